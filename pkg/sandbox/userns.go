package sandbox

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/mountfs"
)

// IDMap is a user namespace's mapping: uid and gid 0..Count-1 inside are
// Host..Host+Count-1 outside (systemd-nspawn -U's shape: the firmware's
// root is an unprivileged uid of the host).
type IDMap struct {
	Host  uint32
	Count uint32
}

// DefaultIDCount is the size of an instance's range (uids 0-65535).
const DefaultIDCount = 65536

func (m IDMap) uid() []syscall.SysProcIDMap {
	return []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(m.Host), Size: int(m.Count)}}
}

// holderEnv marks the re-executed program that only holds a user
// namespace open (until its standard input closes) for IDMapped.
const holderEnv = "ofsroot.userns-holder"

// runHolderIfRequested is the holder's whole life.
func runHolderIfRequested() {
	if _, ok := os.LookupEnv(holderEnv); !ok {
		return
	}
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// IDMapped mounts an idmapped clone of the mount at src on dst: files
// owned by uid (gid) N on src show as owned by m.Host+N through dst, and
// what is written through dst as m.Host+N is stored as N. It is how the
// layers of a sandbox in a user namespace keep the firmware's root-owned
// files (mount_setattr(2) MOUNT_ATTR_IDMAP; ext4 since Linux 5.12, tmpfs
// 6.3, overlayfs over idmapped layers 5.19; not squashfs). The mount is
// nosuid and nodev.
func IDMapped(src, dst string, m IDMap) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer w.Close()
	p, err := os.StartProcess("/proc/self/exe", []string{"ofsroot-userns"}, &os.ProcAttr{
		Env:   []string{holderEnv + "=1"},
		Files: []*os.File{r, nil, os.Stderr},
		Sys: &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER,
			UidMappings: m.uid(), GidMappings: m.uid(),
			Pdeathsig: syscall.SIGKILL,
		},
	})
	r.Close()
	if err != nil {
		return fmt.Errorf("a user namespace for the idmap (%d:%d): %w", m.Host, m.Count, err)
	}
	defer func() { w.Close(); p.Wait() }()
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", p.Pid))
	if err != nil {
		return err
	}
	defer ns.Close()
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return &mountfs.Error{Op: "open_tree(OPEN_TREE_CLONE)", Target: src, Err: err}
	}
	defer unix.Close(fd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return fmt.Errorf("idmapping %s (mount_setattr MOUNT_ATTR_IDMAP; its filesystem or this kernel may not support idmapped mounts): %w", src, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &mountfs.Error{Op: "move_mount", Target: dst, Err: err}
	}
	return nil
}

// MountOverlayAs mounts an overlay whose layers are idmapped to m: the
// overlay does its own work in the upper layer (work folders, copy-up)
// with the mounter's credentials, which the idmap must map. So the
// calling thread (locked meanwhile; a thread-private mount namespace is
// kept) mounts it with m's root (m.Host) as its filesystem uid and gid
// and its capabilities kept, then goes back.
func MountOverlayAs(m IDMap, source, target string, flags uintptr, data string) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var saved [2]unix.CapUserData
	if err := unix.Capget(&hdr, &saved[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	oldGID, _ := unix.SetfsgidRetGid(int(m.Host))
	oldUID, _ := unix.SetfsuidRetUid(int(m.Host))
	defer func() {
		unix.Setfsuid(oldUID)
		unix.Setfsgid(oldGID)
		unix.Capset(&hdr, &saved[0])
	}()
	// A filesystem uid other than 0 clears the file capabilities from
	// the effective set: raise them again.
	c := saved
	for i := range c {
		c[i].Effective = c[i].Permitted
	}
	if err := unix.Capset(&hdr, &c[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return mountfs.Mount(source, target, "overlay", flags, data)
}
