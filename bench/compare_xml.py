#!/usr/bin/env python3
"""Check that the enumeration peers report what nodedev's XML does.

    compare_xml.py NODEDEV.xml PEER.xml...

Each file holds the concatenated <device> documents a program printed (-p).
For every PCI device the fields both sides show are compared: name, path,
parent, driver, class, vendor and product ids and names, the PF, the VFs, the
IOMMU group and its members, the NUMA node. Other devices (nodedev's
computer or net devices) and other elements are left out. Exit 1 on a
difference, naming the device and field."""
import re
import sys
import xml.etree.ElementTree as ET


def addresses(el):
    return [tuple(a.get(k) for k in ("domain", "bus", "slot", "function")) for a in el.iter("address")]


def fields(path):
    text = open(path, encoding="utf-8").read()
    out = {}
    for doc in re.findall(r"<device>.*?</device>", text, re.S):
        dev = ET.fromstring(doc)
        cap = dev.find("capability[@type='pci']")
        if cap is None:
            continue
        f = {
            "path": dev.findtext("path"),
            "parent": dev.findtext("parent"),
            "driver": dev.findtext("driver/name"),
            "class": cap.findtext("class"),
            "vendor": (cap.find("vendor").get("id"), cap.find("vendor").text),
            "product": (cap.find("product").get("id"), cap.find("product").text),
            "numa": cap.find("numa").get("node") if cap.find("numa") is not None else None,
        }
        for sub in ("phys_function", "virt_functions"):
            el = cap.find(f"capability[@type='{sub}']")
            f[sub] = None if el is None else (el.get("maxCount"), addresses(el))
        g = cap.find("iommuGroup")
        f["iommuGroup"] = None if g is None else (g.get("number"), addresses(g))
        out[dev.findtext("name")] = f
    return out


def main():
    ref = fields(sys.argv[1])
    bad = 0
    for peer in sys.argv[2:]:
        other = fields(peer)
        if set(ref) != set(other):
            print(f"{peer}: devices differ: only in nodedev {sorted(set(ref) - set(other))[:5]}, "
                  f"only in peer {sorted(set(other) - set(ref))[:5]}")
            bad += 1
            continue
        for name, f in ref.items():
            for k, v in f.items():
                if other[name][k] != v:
                    print(f"{peer}: {name} {k}: nodedev {v!r}, peer {other[name][k]!r}")
                    bad += 1
                    break
            if bad > 10:
                break
        print(f"{peer}: {len(other)} PCI devices, {'same fields' if not bad else 'DIFFERENT'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
