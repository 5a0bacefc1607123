# libvirt fidelity on the real kernel: the connection calls and libvirt's
# error semantics through a program written against libvirt's headers
# (libvirt_fidelity.c), on the edu device (no driver, back on none after).
if [ -x /bin/libvirt_fidelity ]; then
    libvirt_fidelity "$EDU"
    expect_driver fidelity-edu-back "$EDU" none
else
    echo "NODEDEV-NOTE libvirt_fidelity not built (no libvirt-dev on the host): fidelity checks skipped"
fi
