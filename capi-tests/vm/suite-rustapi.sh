# The Rust API and the C side on one real host (issue 14, "A Rust API"):
# examples/vmm_passthrough (a Rust VMM's calls through nodedev::Host) and
# the nodedev CLI see each other's assignments and records, and the DRA
# inventory of the real kernel. Sourced by suite.sh: uses its helpers and
# $U, $E, $B1, $B2. Leaves every device on its host driver, no records.

V=vmm_passthrough

# A Rust VMM prepares a device: the CLI sees its owner and cannot take it.
ok rustapi-prepare $V prepare rust-vm "$E"
expect_driver rustapi-prepare-driver "$E" vfio-pci
[ "$(record_field "$E" owner)" = rust-vm ] && pass rustapi-record-owner || fail rustapi-record-owner "$(cat /run/nodedev/$E.json 2>&1 | tr '\n' ' ')"
nodedev -c $U list | grep "^$E " | grep -q " rust-vm " && pass rustapi-cli-sees-owner || fail rustapi-cli-sees-owner "$(nodedev -c $U list 2>&1 | grep "$E")"
refused rustapi-cli-cannot-prepare "rust-vm" nodedev -c $U prepare c-vm "$E" --managed
refused rustapi-cli-cannot-reattach "rust-vm" nodedev -c $U reattach "$E"
ok rustapi-release $V release rust-vm
expect_driver rustapi-release-driver "$E" e1000e

# The CLI prepares the bridge group: the Rust API sees it and cannot take it.
ok rustapi-cli-prepare nodedev -c $U prepare c-vm "$B1" "$B2" --managed
[ "$($V owner "$B2" 2>&1)" = c-vm ] && pass rustapi-sees-cli-owner || fail rustapi-sees-cli-owner "$($V owner "$B2" 2>&1)"
refused rustapi-cannot-prepare "c-vm" $V prepare rust-vm "$B2"
ok rustapi-cli-release nodedev -c $U release c-vm
expect_driver rustapi-cli-release-driver-1 "$B1" e1000
expect_driver rustapi-cli-release-driver-2 "$B2" e1000

# A detach by the Rust API is given back by the CLI from the record it wrote.
ok rustapi-detach $V detach "$E" kvm
expect_driver rustapi-detach-driver "$E" pci-stub
[ "$(record_field "$E" original_driver)" = e1000e ] && pass rustapi-detach-record || fail rustapi-detach-record "$(cat /run/nodedev/$E.json 2>&1 | tr '\n' ' ')"
ok rustapi-cli-reattach nodedev -c $U reattach "$E"
expect_driver rustapi-cli-reattach-driver "$E" e1000e
# And the other way round.
ok rustapi-cli-detach nodedev -c $U detach "$B1" --group
ok rustapi-reattach-1 $V reattach "$B1"
ok rustapi-reattach-2 $V reattach "$B2"
expect_driver rustapi-reattach-driver "$B2" e1000

# The DRA inventory of the real kernel: every endpoint named, its driver.
if out=$(nodedev -c $U list --format dra --node guest 2>&1); then
    name="pci-$(echo "$E" | tr ':.' '--')"
    if echo "$out" | grep -q "\"name\":\"$name\"" && echo "$out" | grep -q '"nodedev.io/driver":{"string":"e1000e"}'; then
        pass rustapi-dra-real
    else
        fail rustapi-dra-real "$name or e1000e missing: $(echo "$out" | head -c 300)"
    fi
else
    fail rustapi-dra-real "$out"
fi
# A device whose record cannot be used is not offered to the scheduler
# (nodedev refuses it until the record is cleared); stderr says so.
name="pci-$(echo "$E" | tr ':.' '--')"
mkdir -p /run/nodedev && echo '{not json' > "/run/nodedev/$E.json"
out=$(nodedev -c $U list --format dra --node guest 2>/tmp/dra-err)
if echo "$out" | grep -q '"kind":"ResourceSlice"' && ! echo "$out" | grep -q "\"name\":\"$name\"" && grep -q "$E.*recover --clear" /tmp/dra-err; then
    pass rustapi-dra-corrupt-record-withheld
else
    fail rustapi-dra-corrupt-record-withheld "$(cat /tmp/dra-err) $(echo "$out" | head -c 200)"
fi
rm -f "/run/nodedev/$E.json" /tmp/dra-err
ls /run/nodedev/*.json >/dev/null 2>&1 && fail rustapi-no-records-left "$(ls /run/nodedev)" || pass rustapi-no-records-left
