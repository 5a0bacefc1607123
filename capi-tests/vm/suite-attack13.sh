# ---- attack13: persistent definitions nodedev must not obey (issue 13 items 1-3) ----
# Definitions decide which devices leave the host at boot: one another user
# may write, or a FIFO, is reported by the udev answer and by apply (which
# exits 1) and the device stays on its host driver; a FIFO never hangs them.
D=/etc/nodedev/persistent
ok attack13-define nodedev -c $U detach "$E" --persistent
ok attack13-reattach-keeps-definition nodedev -c $U reattach "$E"
expect_driver attack13-on-host "$E" e1000e
chmod 666 "$D/$E.json"
refused attack13-udev-refuses-writable-definition "writable by other users (mode 666)" nodedev -c $U udev "$E"
refused attack13-apply-refuses-writable-definition "writable by other users (mode 666)" nodedev -c $U apply
expect_driver attack13-writable-definition-untouched "$E" e1000e
chmod 644 "$D/$E.json"
chmod 777 "$D"
refused attack13-apply-refuses-writable-directory "definitions directory $D is writable by other users" nodedev -c $U apply
expect_driver attack13-writable-directory-untouched "$E" e1000e
chmod 755 "$D"
rm -f "$D/$E.json"
mkfifo "$D/$E.json"
for cmd in "udev $E" apply; do
    name=attack13-fifo-$(echo "$cmd" | cut -d' ' -f1)
    nodedev -c $U $cmd > /tmp/attack13.out 2>&1 & p=$!
    sleep 3
    if kill -0 $p 2>/dev/null; then
        kill $p; wait $p 2>/dev/null
        fail "$name" "nodedev $cmd hung on a FIFO definition"
    elif wait $p; then
        fail "$name" "succeeded: $(tr '\n' ' ' < /tmp/attack13.out)"
    else
        grep -q "not a regular file" /tmp/attack13.out && pass "$name" \
            || fail "$name" "wrong message: $(tr '\n' ' ' < /tmp/attack13.out)"
    fi
done
rm -f "$D/$E.json"
expect_driver attack13-fifo-untouched "$E" e1000e
