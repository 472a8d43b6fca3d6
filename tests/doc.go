// Package tests holds the end-to-end boot tests: each boots the real
// initramfs (cmd/init packed by initramfs.Build) with a Debian kernel in
// QEMU, on every board, with the probe (tests/probe) as the real init, and
// checks what the probe and the console report. TestDeviceX86 instead
// boots a whole Debian PC (systemd, Debian's kernel package, GRUB) from
// its own disk through QEMU's firmware, and takes it through the ofsroot
// package's life in seven boots: install, protected, ofsctl overlay
// off/on/once, a kernel package's reinstall, replacement by
// initramfs-tools (see its doc). It is built with the devicetest tag
// only: `make test-device`, apart from `make test` for CI's time budget.
//
// Run them with `go test ./tests/ -v` after scripts/setup-host.sh; -short
// skips them. Kernels are cached in .cache/ (or $OFSROOT_CACHE); set
// OFSROOT_KEEP=1 to keep the run folder with the console logs.
package tests
