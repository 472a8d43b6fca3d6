// Package bootlab is the boot lab: Debian kernels, test root images and
// QEMU runs, shared by the e2e tests, `ofsroot demo` and `ofsroot bench`.
//
// The pieces:
//
//   - FetchKernel (from package debcache, the one home for downloads)
//     finds a board's current Debian kernel package with apt-cache,
//     downloads it with apt-get into a cache folder and unpacks it with
//     dpkg -x (never into the host).
//   - BuildProbe, WriteRootTree, MakeExt4 and MakeMBRDisk make a test root
//     filesystem whose /sbin/init is the probe program (tests/probe), as a
//     bare ext4 image or as a partition of an MBR disk.
//   - Boot runs one QEMU under TCG with the board's machine, console and
//     disk attachment, under a timeout, and captures the console.
//   - ParseProbe reads back what the probe reported from the console.
//
// Everything here shells out to host tools (apt-get, dpkg, mkfs.ext4,
// sfdisk, qemu-system-*, go); scripts/setup-host.sh installs them.
package bootlab
