# Per-IOMMU-group locks on the real kernel (sourced by suite.sh; src/state/lock.rs):
# two processes racing for one group never both win; processes on different
# groups run at once; a process stopped while it holds a group blocks that
# group only, and a caller waiting for it gives up within the bound, naming
# its pid. Leaves every device as it found it and no record.

# One group, two guests: the e1000 pair behind the bridge shares a group,
# and a group belongs to one guest. Each round both start at once.
bad=""
i=0
while [ $i -lt 4 ]; do
    nodedev -c $U prepare gl-a "$B1" --managed --driver kvm > /tmp/gl-a.txt 2>&1 & p1=$!
    nodedev -c $U prepare gl-b "$B2" --managed --driver kvm > /tmp/gl-b.txt 2>&1 & p2=$!
    wait $p1; r1=$?
    wait $p2; r2=$?
    if [ "$r1" = 0 ] && [ "$r2" != 0 ]; then winner=gl-a; loser=/tmp/gl-b.txt
    elif [ "$r2" = 0 ] && [ "$r1" != 0 ]; then winner=gl-b; loser=/tmp/gl-a.txt
    else
        bad="$bad round $i: exits $r1 and $r2: $(cat /tmp/gl-a.txt /tmp/gl-b.txt | tr '\n' ' ')"
        nodedev -c $U release gl-a >/dev/null 2>&1; nodedev -c $U release gl-b >/dev/null 2>&1
        i=$((i + 1)); continue
    fi
    grep -q "shares IOMMU group" $loser || bad="$bad round $i: loser said $(tr '\n' ' ' < $loser)"
    nodedev -c $U release $winner >/dev/null 2>&1 || bad="$bad round $i: release $winner failed"
    i=$((i + 1))
done
[ -z "$bad" ] && pass grouplock-one-group-one-winner || fail grouplock-one-group-one-winner "$bad"
expect_driver grouplock-race-first-back "$B1" e1000
expect_driver grouplock-race-second-back "$B2" e1000

GPF=$(by_id 0x8086 0x10c9 | head -n1)
if [ -z "$GPF" ]; then
    echo "NODEDEV-NOTE no igb PF in this guest: per-group VF checks skipped"
else
    echo 3 > "/sys/bus/pci/devices/$GPF/sriov_numvfs" && sleep 1
    set -- $(by_id 0x8086 0x10ca)
    GV1=$1; GV2=$2; GV3=$3
    # Three guests, three groups, three processes at once: all of them win.
    nodedev -c $U prepare gl-1 "$GV1" --managed > /tmp/gl-1.txt 2>&1 & p1=$!
    nodedev -c $U prepare gl-2 "$GV2" --managed > /tmp/gl-2.txt 2>&1 & p2=$!
    nodedev -c $U prepare gl-3 "$GV3" --managed > /tmp/gl-3.txt 2>&1 & p3=$!
    rc=0; for p in $p1 $p2 $p3; do wait $p || rc=1; done
    [ "$rc" = 0 ] && pass grouplock-three-groups-at-once \
        || fail grouplock-three-groups-at-once "$(cat /tmp/gl-1.txt /tmp/gl-2.txt /tmp/gl-3.txt | tr '\n' ' ')"
    for v in $GV1 $GV2 $GV3; do expect_driver "grouplock-prepared-$v" "$v" vfio-pci; done
    nodedev -c $U release gl-1 > /tmp/gl-1.txt 2>&1 & p1=$!
    nodedev -c $U release gl-2 > /tmp/gl-2.txt 2>&1 & p2=$!
    nodedev -c $U release gl-3 > /tmp/gl-3.txt 2>&1 & p3=$!
    rc=0; for p in $p1 $p2 $p3; do wait $p || rc=1; done
    [ "$rc" = 0 ] && pass grouplock-three-released-at-once \
        || fail grouplock-three-released-at-once "$(cat /tmp/gl-1.txt /tmp/gl-2.txt /tmp/gl-3.txt | tr '\n' ' ')"
    for v in $GV1 $GV2 $GV3; do expect_driver "grouplock-released-$v" "$v" igbvf; done

    # A prepare stopped after its first sysfs write (crash-hooks) holds GV1's
    # group: GV2's group goes on; GV1's waits, then gives up naming it.
    rm -f /tmp/paused
    NODEDEV_PAUSE_AFTER_WRITE=1 NODEDEV_PAUSE_MARKER=/tmp/paused nodedev -c $U prepare gl-p "$GV1" --managed >/dev/null 2>&1 &
    holder=$!
    i=0
    while [ ! -e /tmp/paused ] && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
    if [ ! -e /tmp/paused ]; then
        fail grouplock-holder-paused "the prepare never reached its first write"
    else
        ok grouplock-other-group-while-held nodedev -c $U prepare gl-q "$GV2" --managed
        expect_driver grouplock-other-group-prepared "$GV2" vfio-pci
        t0=$(date +%s)
        refused grouplock-held-group-waits-and-names-holder "IOMMU group $(group "$GV1") .* held by pid $holder (nodedev)" \
            nodedev -c $U prepare gl-r "$GV1" --managed
        waited=$(( $(date +%s) - t0 ))
        [ "$waited" -ge 29 ] && [ "$waited" -le 45 ] && pass grouplock-wait-bounded-30s \
            || fail grouplock-wait-bounded-30s "gave up after $waited s"
        [ "$(record_field "$GV1" owner)" = gl-p ] && pass grouplock-held-record-untouched \
            || fail grouplock-held-record-untouched "owner $(record_field "$GV1" owner)"
    fi
    kill -9 $holder 2>/dev/null; wait $holder 2>/dev/null
    # The lock died with its holder: recover rolls its prepare back.
    ok grouplock-recover-after-holder nodedev -c $U recover
    expect_driver grouplock-held-rolled-back "$GV1" igbvf
    ok grouplock-release-other nodedev -c $U release gl-q
    expect_driver grouplock-other-back "$GV2" igbvf
    echo 0 > "/sys/bus/pci/devices/$GPF/sriov_numvfs"
fi
left=$(ls /run/nodedev/*.json 2>/dev/null | wc -l)
[ "$left" = 0 ] && pass grouplock-no-records-left || fail grouplock-no-records-left "$left records: $(ls /run/nodedev)"
