// Package tests holds the end-to-end boot tests: each boots the real
// initramfs (cmd/init packed by initramfs.Build) with a Debian kernel in
// QEMU, on every board, with the probe (tests/probe) as the real init, and
// checks what the probe and the console report.
//
// Run them with `go test ./tests/ -v` after scripts/setup-host.sh; -short
// skips them. Kernels are cached in .cache/ (or $OFSROOT_CACHE); set
// OFSROOT_KEEP=1 to keep the run folder with the console logs.
package tests
