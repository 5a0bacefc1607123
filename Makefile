# nodedev: build, test and install.
#
#   make            build the libraries and the CLI (release)
#   make check      every test: rustfmt and clippy (-D warnings), the Rust
#                   API's docs (rustdoc -D warnings, doctests, the crate
#                   without its C ABI), cargo's
#                   suites (incl. the C programs), Miri over the C
#                   boundary's unit tests (nightly toolchain), the
#                   README's quick start in a fresh clone, a bounded
#                   cargo-fuzz run and the real-kernel suite in a QEMU guest
#   make install    after `make`; PREFIX=/usr/local LIBDIR=$(PREFIX)/lib
#                   INCLUDEDIR=$(PREFIX)/include BINDIR=$(PREFIX)/bin
#                   MANDIR=$(PREFIX)/share/man DATADIR=$(PREFIX)/share
#                   DESTDIR= (staging root) UDEVRULESDIR=$(PREFIX)/lib/udev/rules.d
#                   SYSTEMDUNITDIR=$(PREFIX)/lib/systemd/system (packagers for
#                   /usr: /usr/lib/udev/rules.d, /usr/lib/systemd/system)
#   make uninstall  the same variables
#
# Layout (cargo-c's): LIBDIR/libnodedev.so.VERSION with the soname link
# libnodedev.so.0 and the link libnodedev.so for the linker, libnodedev.a,
# INCLUDEDIR/nodedev/nodedev.h, LIBDIR/pkgconfig/nodedev.pc; the JSON
# Schema of `nodedev --json` as DATADIR/nodedev/nodedev-json.schema.json.

CARGO ?= cargo
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share
DESTDIR ?=
UDEVRULESDIR ?= $(PREFIX)/lib/udev/rules.d
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
SONAME := libnodedev.so.0
REL := target/release

.PHONY: all check check-host check-vm check-fuzz check-readme check-lint check-doc check-miri install uninstall

all:
	$(CARGO) build --release

# `cargo test` builds only the rlib of the crate; the C tests link the cdylib
# and staticlib that `cargo build` makes, so build first.
check-host: all
	$(CARGO) test --release

check-vm: all
	bash capi-tests/vm/run.sh

check-fuzz:
	bash fuzz/run.sh

# The README's quick start, verbatim, in a fresh clone of the committed tree.
check-readme:
	bash tests/readme_quickstart.sh

# Formatting (rustfmt.toml) and clippy with every warning an error.
check-lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings

# The Rust API: its documentation without a warning, its examples run as
# doctests, and the crate built without the C ABI (feature capi off).
check-doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps
	$(CARGO) test --release --doc
	$(CARGO) check --lib --no-default-features

# Miri over the C boundary's unit tests (src/capi): see tests/miri.sh.
check-miri:
	bash tests/miri.sh

check: check-lint check-doc check-host check-miri check-readme check-fuzz check-vm

# No dependency on `all`: tests run `make install` from inside `cargo test`,
# where a nested cargo would wait for the build lock forever.
install:
	@for f in $(REL)/libnodedev.so $(REL)/libnodedev.a $(REL)/nodedev; do \
	    [ -f $$f ] || { echo "$$f is missing: run 'make' first" >&2; exit 1; }; done
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/nodedev \
	    $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DATADIR)/nodedev
	install -m 0755 $(REL)/libnodedev.so $(DESTDIR)$(LIBDIR)/libnodedev.so.$(VERSION)
	ln -sf libnodedev.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libnodedev.so
	install -m 0644 $(REL)/libnodedev.a $(DESTDIR)$(LIBDIR)/libnodedev.a
	install -m 0644 include/nodedev.h $(DESTDIR)$(INCLUDEDIR)/nodedev/nodedev.h
	sed -e '/^#/d' -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)/nodedev|' -e 's|@VERSION@|$(VERSION)|' \
	    pkgconfig/nodedev.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/nodedev.pc
	chmod 0644 $(DESTDIR)$(LIBDIR)/pkgconfig/nodedev.pc
	install -m 0755 $(REL)/nodedev $(DESTDIR)$(BINDIR)/nodedev
	install -m 0644 doc/nodedev.1 $(DESTDIR)$(MANDIR)/man1/nodedev.1
	install -m 0644 doc/nodedev-json.schema.json $(DESTDIR)$(DATADIR)/nodedev/nodedev-json.schema.json
	install -d $(DESTDIR)$(UDEVRULESDIR) $(DESTDIR)$(SYSTEMDUNITDIR)
	sed -e '/^#/!s|@BINDIR@|$(BINDIR)|g' dist/40-nodedev.rules.in > $(DESTDIR)$(UDEVRULESDIR)/40-nodedev.rules
	sed -e 's|@BINDIR@|$(BINDIR)|g' dist/nodedev-apply.service.in > $(DESTDIR)$(SYSTEMDUNITDIR)/nodedev-apply.service
	chmod 0644 $(DESTDIR)$(UDEVRULESDIR)/40-nodedev.rules $(DESTDIR)$(SYSTEMDUNITDIR)/nodedev-apply.service

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libnodedev.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	    $(DESTDIR)$(LIBDIR)/libnodedev.so $(DESTDIR)$(LIBDIR)/libnodedev.a \
	    $(DESTDIR)$(INCLUDEDIR)/nodedev/nodedev.h $(DESTDIR)$(LIBDIR)/pkgconfig/nodedev.pc \
	    $(DESTDIR)$(BINDIR)/nodedev $(DESTDIR)$(MANDIR)/man1/nodedev.1 \
	    $(DESTDIR)$(DATADIR)/nodedev/nodedev-json.schema.json \
	    $(DESTDIR)$(UDEVRULESDIR)/40-nodedev.rules $(DESTDIR)$(SYSTEMDUNITDIR)/nodedev-apply.service
	-rmdir $(DESTDIR)$(INCLUDEDIR)/nodedev $(DESTDIR)$(DATADIR)/nodedev
