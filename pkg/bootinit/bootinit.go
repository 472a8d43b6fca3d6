// Package bootinit is what the ofsroot /init does, step by step: mount
// the kernel filesystems, read the command line, load the kernel modules
// the initramfs carries, find the root device, build the protected root
// (real root read-only at /mnt/root-RO, a size-limited tmpfs at
// /mnt/root-RW, an overlay of both as the new /), rewrite its fstab in
// RAM, record what it did in /run/ofsroot/status.json, and switch_root
// into the real init.
//
// It fails closed: if the overlay cannot be built, the real root is
// booted read-only and the status says degraded; never read-write. If
// there is no root to boot, the rescue policy from the command line
// applies (reboot after a delay by default). PID 1 never panics out.
package bootinit

// Paths inside the initramfs. The layers are built at
// bootstatus.ReadOnlyLayer and bootstatus.WritableLayer, which is also
// where they stay visible after the switch, inside the new root.
const (
	NewRoot        = "/newroot"
	StatusFileName = "status.json"
)
