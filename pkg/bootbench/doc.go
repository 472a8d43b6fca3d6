// Package bootbench measures how long an initramfs takes to hand over to
// the real init, side by side with its peers, in QEMU.
//
// Every variant boots the same kernel and the same root disk, whose
// /sbin/init is a static marker (package marker below): its first act
// stamps /dev/kmsg, then it copies the kernel log (and ofsroot's status
// record, if there is one) to the console and reboots. The stage of a
// boot is the kernel's "Run /init as init process" record to the
// marker's stamp, both on the kernel's own clock, so every variant is
// measured the same way whatever it logs.
//
//   - Variants: ofsroot's initramfs, Debian's initramfs-tools with
//     overlayroot (MODULES=most and MODULES=dep, built in a debootstrap
//     chroot and cached), a kernel-only floor whose /init is the marker
//     itself, and on request a naive Go /init with ofsroot's modules
//     (package naive below): the yardstick ofsroot's init is to beat.
//   - ParseConsole and Analyze turn one console log into a Boot: the
//     stage and its spans (a bar per step for the timeline).
//   - Summarize and Plot give the medians table and an SVG timeline.
//
// The parsing is pure and unit-tested; the figures themselves are not a
// test (they are guest-clock times under TCG, noisy on a shared host).
package bootbench
