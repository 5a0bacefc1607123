# nodedev: build, test and install.
#
#   make            build the libraries and the CLI (release)
#   make check      every test: cargo's suites (incl. the C programs) and the
#                   real-kernel suite in a QEMU guest
#   make install    PREFIX=/usr/local LIBDIR=$(PREFIX)/lib DESTDIR=

CARGO ?= cargo

.PHONY: all check check-host check-vm

all:
	$(CARGO) build --release

# `cargo test` builds only the rlib of the crate; the C tests link the cdylib
# and staticlib that `cargo build` makes, so build first.
check-host: all
	$(CARGO) test --release

check-vm: all
	bash capi-tests/vm/run.sh

check: check-host check-vm
