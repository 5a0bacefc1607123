//! The `test:///default` host, as a host description (format: `spec.rs`), so
//! it goes through the same checks as a description read from a file.
//!
//! A Q35-like Intel machine: a host bridge; a GPU and its audio function in
//! one group; the integrated boot VGA; a conventional PCI bridge whose two
//! e1000 NICs share its group; an igb SR-IOV PF with three VFs; a device no
//! driver claims (QEMU's edu); an NVMe drive holding "/" and the swap
//! partition; the ICH9 functions as one multi-function group. vfio-pci and
//! xen-pciback start unloaded. The host's address and default route are on
//! bridge br0, whose port is the igb PF's eth0; the framebuffer console
//! draws on the integrated GPU's fb0. PCI Express links on the root ports,
//! the GPU, the igb PF (which also has VPD) and the NVMe drive; the
//! integrated GPU is a root-complex integrated endpoint; QEMU's DMI strings.
//! The integrated GPU is a mediated-device parent (GVT-g) with two types
//! sharing one pool: 4 instances of i915-GVTg_V5_4, or 8 of
//! i915-GVTg_V5_8, or a mix.

pub(super) const HOST: &str = r#"{
  "driver_override": true,
  "iommu": true,
  "drivers": [
    {"name": "pcieport", "module": "pcieport",
     "ids": ["8086:29c1", "8086:a110", "8086:a118", "8086:a119", "8086:a117"]},
    {"name": "i915", "ids": ["8086:5912"]},
    {"name": "nouveau", "ids": ["10de:1b81"]},
    {"name": "snd_hda_intel", "ids": ["10de:10f0"]},
    {"name": "e1000", "ids": ["8086:100e"]},
    {"name": "igb", "ids": ["8086:10c9"]},
    {"name": "igbvf", "ids": ["8086:10ca"]},
    {"name": "nvme", "classes": ["0x010802"]},
    {"name": "ahci", "classes": ["0x010601"]},
    {"name": "lpc_ich", "ids": ["8086:2918"]},
    {"name": "i801_smbus", "module": "i2c_i801", "ids": ["8086:2930"]},
    {"name": "pci-stub", "module": "pci_stub"},
    {"name": "vfio-pci", "module": "vfio_pci", "loaded": false,
     "vfio_aliases": ["vfio_pci:v*d*sv*sd*bc*sc*i*"]},
    {"name": "xen-pciback", "module": "xen_pciback", "loaded": false}
  ],
  "devices": [
    {"address": "0000:00:00.0", "vendor": "0x8086", "device": "0x29c0", "class": "0x060000",
     "subsystem_vendor": "0x1af4", "subsystem_device": "0x1100",
     "vendor_name": "Intel Corporation", "product_name": "82G33/G31/P35/P31 Express DRAM Controller",
     "iommu_group": 0, "numa_node": 0},

    {"address": "0000:00:01.0", "vendor": "0x8086", "device": "0x29c1", "class": "0x060400",
     "vendor_name": "Intel Corporation", "product_name": "82G33/G31/P35/P31 Express PCI Express Root Port",
     "driver": "pcieport", "iommu_group": 1, "numa_node": 0, "pcie": {"port": 1, "max_speed": "8", "max_width": 16, "speed": "8", "width": 16}},
    {"address": "0000:01:00.0", "vendor": "0x10de", "device": "0x1b81", "class": "0x030000",
     "subsystem_vendor": "0x1458", "subsystem_device": "0x3701",
     "vendor_name": "NVIDIA Corporation", "product_name": "GP104 [GeForce GTX 1070]",
     "driver": "nouveau", "iommu_group": 2, "parent": "0000:00:01.0", "numa_node": 0,
     "reset_method": ["bus"], "boot_vga": false,
     "pcie": {"max_speed": "8", "max_width": 16, "speed": "2.5", "width": 16}},
    {"address": "0000:01:00.1", "vendor": "0x10de", "device": "0x10f0", "class": "0x040300",
     "subsystem_vendor": "0x1458", "subsystem_device": "0x3701",
     "vendor_name": "NVIDIA Corporation", "product_name": "GP104 High Definition Audio Controller",
     "driver": "snd_hda_intel", "iommu_group": 2, "parent": "0000:00:01.0", "numa_node": 0,
     "reset_method": ["bus"]},

    {"address": "0000:00:02.0", "vendor": "0x8086", "device": "0x5912", "class": "0x030000",
     "subsystem_vendor": "0x1043", "subsystem_device": "0x8694",
     "vendor_name": "Intel Corporation", "product_name": "HD Graphics 630",
     "driver": "i915", "iommu_group": 3, "numa_node": 0, "reset_method": ["flr"], "boot_vga": true,
     "framebuffer": "fb0", "pcie": {"integrated": true},
     "mdev": {"capacity": 8, "types": [
       {"id": "i915-GVTg_V5_4", "name": "GVTg_V5_4", "cost": 2,
        "description": "low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\nresolution: 1920x1200\nweight: 4"},
       {"id": "i915-GVTg_V5_8", "name": "GVTg_V5_8", "cost": 1,
        "description": "low_gm_size: 64MB\nhigh_gm_size: 384MB\nfence: 4\nresolution: 1024x768\nweight: 2"}]}},

    {"address": "0000:00:1c.0", "vendor": "0x8086", "device": "0xa110", "class": "0x060400",
     "vendor_name": "Intel Corporation",
     "product_name": "100 Series/C230 Series Chipset Family PCI Express Root Port #1",
     "driver": "pcieport", "iommu_group": 4, "numa_node": 0, "pcie": {"port": 1, "max_speed": "8", "max_width": 1, "speed": "8", "width": 1}},
    {"address": "0000:02:00.0", "vendor": "0x8086", "device": "0x244e", "class": "0x060400",
     "vendor_name": "Intel Corporation", "product_name": "82801 PCI Bridge",
     "iommu_group": 5, "parent": "0000:00:1c.0", "numa_node": 0},
    {"address": "0000:03:01.0", "vendor": "0x8086", "device": "0x100e", "class": "0x020000",
     "subsystem_vendor": "0x8086", "subsystem_device": "0x001e",
     "vendor_name": "Intel Corporation", "product_name": "82540EM Gigabit Ethernet Controller",
     "driver": "e1000", "iommu_group": 5, "parent": "0000:02:00.0", "numa_node": 0,
     "net": [{"name": "eth1", "up": false, "features": ["rx", "tx", "sg"]}]},
    {"address": "0000:03:02.0", "vendor": "0x8086", "device": "0x100e", "class": "0x020000",
     "subsystem_vendor": "0x8086", "subsystem_device": "0x001e",
     "vendor_name": "Intel Corporation", "product_name": "82540EM Gigabit Ethernet Controller",
     "driver": "e1000", "iommu_group": 5, "parent": "0000:02:00.0", "numa_node": 0,
     "net": [{"name": "eth2", "up": false}]},

    {"address": "0000:00:1d.0", "vendor": "0x8086", "device": "0xa118", "class": "0x060400",
     "vendor_name": "Intel Corporation",
     "product_name": "100 Series/C230 Series Chipset Family PCI Express Root Port #9",
     "driver": "pcieport", "iommu_group": 6, "numa_node": 0, "pcie": {"port": 9, "max_speed": "5", "max_width": 4, "speed": "5", "width": 4}},
    {"address": "0000:04:00.0", "vendor": "0x8086", "device": "0x10c9", "class": "0x020000",
     "subsystem_vendor": "0x8086", "subsystem_device": "0xa03c",
     "vendor_name": "Intel Corporation", "product_name": "82576 Gigabit Network Connection",
     "driver": "igb", "iommu_group": 7, "parent": "0000:00:1d.0", "numa_node": 0,
     "reset_method": ["flr", "bus"], "sriov_totalvfs": 7,
     "net": [{"name": "eth0", "up": true, "master": "br0", "speed": 1000,
              "features": ["rx", "tx", "sg", "tso", "gso", "gro", "rxvlan", "txvlan", "rxhash"]}],
     "pcie": {"max_speed": "2.5", "max_width": 4, "speed": "2.5", "width": 4},
     "vpd": {"name": "Intel 82576 Gigabit Dual Port Server Adapter",
             "readonly": [["PN", "E43709-004"], ["EC", "E43709-004"], ["SN", "A0B1C2D3E4F5"], ["V0", "FW 1.5.1"]],
             "readwrite": [["YA", "rack-7 slot-2"], ["V1", "spare"], ["Y1", "ok"]]}},
    {"address": "0000:04:10.0", "vendor": "0x8086", "device": "0x10ca", "class": "0x020000",
     "subsystem_vendor": "0x8086", "subsystem_device": "0xa03c",
     "vendor_name": "Intel Corporation", "product_name": "82576 Virtual Function",
     "driver": "igbvf", "iommu_group": 8, "parent": "0000:00:1d.0", "physfn": "0000:04:00.0",
     "numa_node": 0, "reset_method": ["flr"]},
    {"address": "0000:04:10.2", "vendor": "0x8086", "device": "0x10ca", "class": "0x020000",
     "subsystem_vendor": "0x8086", "subsystem_device": "0xa03c",
     "vendor_name": "Intel Corporation", "product_name": "82576 Virtual Function",
     "driver": "igbvf", "iommu_group": 9, "parent": "0000:00:1d.0", "physfn": "0000:04:00.0",
     "numa_node": 0, "reset_method": ["flr"]},
    {"address": "0000:04:10.4", "vendor": "0x8086", "device": "0x10ca", "class": "0x020000",
     "subsystem_vendor": "0x8086", "subsystem_device": "0xa03c",
     "vendor_name": "Intel Corporation", "product_name": "82576 Virtual Function",
     "driver": "igbvf", "iommu_group": 10, "parent": "0000:00:1d.0", "physfn": "0000:04:00.0",
     "numa_node": 0, "reset_method": ["flr"]},

    {"address": "0000:00:1e.0", "vendor": "0x8086", "device": "0xa119", "class": "0x060400",
     "vendor_name": "Intel Corporation",
     "product_name": "100 Series/C230 Series Chipset Family PCI Express Root Port #10",
     "driver": "pcieport", "iommu_group": 11, "numa_node": 0, "pcie": {"port": 10, "max_speed": "2.5", "max_width": 1, "speed": "2.5", "width": 1}},
    {"address": "0000:05:00.0", "vendor": "0x1234", "device": "0x11e8", "class": "0x00ff00",
     "subsystem_vendor": "0x1af4", "subsystem_device": "0x1100",
     "vendor_name": "Technical Corp.", "product_name": "QEMU edu device",
     "iommu_group": 12, "parent": "0000:00:1e.0", "numa_node": 0, "reset_method": ["flr"]},

    {"address": "0000:00:1b.0", "vendor": "0x8086", "device": "0xa117", "class": "0x060400",
     "vendor_name": "Intel Corporation",
     "product_name": "100 Series/C230 Series Chipset Family PCI Express Root Port #8",
     "driver": "pcieport", "iommu_group": 13, "numa_node": 0, "pcie": {"port": 8, "max_speed": "8", "max_width": 4, "speed": "8", "width": 4}},
    {"address": "0000:06:00.0", "vendor": "0x144d", "device": "0xa808", "class": "0x010802",
     "subsystem_vendor": "0x144d", "subsystem_device": "0xa801",
     "vendor_name": "Samsung Electronics Co Ltd", "product_name": "NVMe SSD Controller SM981/PM981/PM983",
     "driver": "nvme", "iommu_group": 14, "parent": "0000:00:1b.0", "numa_node": 0,
     "reset_method": ["flr"], "pcie": {"max_speed": "8", "max_width": 4, "speed": "8", "width": 4},
     "block": [{"name": "nvme0n1", "partitions": [{"name": "nvme0n1p1", "mounts": ["/"]}, {"name": "nvme0n1p2", "swap": true}]}]},

    {"address": "0000:00:1f.0", "vendor": "0x8086", "device": "0x2918", "class": "0x060100",
     "subsystem_vendor": "0x1af4", "subsystem_device": "0x1100",
     "vendor_name": "Intel Corporation", "product_name": "82801IB (ICH9) LPC Interface Controller",
     "driver": "lpc_ich", "iommu_group": 15, "numa_node": 0},
    {"address": "0000:00:1f.2", "vendor": "0x8086", "device": "0x2922", "class": "0x010601",
     "subsystem_vendor": "0x1af4", "subsystem_device": "0x1100",
     "vendor_name": "Intel Corporation",
     "product_name": "82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode]",
     "driver": "ahci", "iommu_group": 15, "numa_node": 0},
    {"address": "0000:00:1f.3", "vendor": "0x8086", "device": "0x2930", "class": "0x0c0500",
     "subsystem_vendor": "0x1af4", "subsystem_device": "0x1100",
     "vendor_name": "Intel Corporation", "product_name": "82801I (ICH9 Family) SMBus Controller",
     "driver": "i801_smbus", "iommu_group": 15, "numa_node": 0}
  ],
  "links": [
    {"name": "br0", "kind": "bridge", "up": true, "addresses": ["192.0.2.10/24"],
     "routes": ["default", "192.0.2.0/24"]}
  ],
  "fbcon": true,
  "dmi": {"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)", "product_version": "pc-q35-8.2",
          "product_serial": "NODEDEV-SIM-0001", "product_uuid": "6e6f6465-6465-4076-8000-000000000042",
          "bios_vendor": "SeaBIOS", "bios_version": "1.16.3-debian-1.16.3-2", "bios_date": "04/01/2014"}
}"#;
