// Package store is the desktop runner's state (ofsroot sandbox): a
// firmware, given as a folder or an ext2/3/4 or squashfs image,
// identified by its SHA-256; instances of it by short names, each with
// its own writable layer in a state folder laid out as firmwared's:
// DIR/instances/NAME/{instance.json,lock,ro,layer.img,layer,union},
// the layer holding upper and work. It mounts the firmware read-only (a
// read-only bind, or a read-only auto-clearing loop device), the
// instance's layer (an ext4 image of a fixed size, so a firmware that
// fills it gets ENOSPC and the host's disk is untouched), the overlay,
// remounts it, cleans stale mounts, drops instances and diffs them
// (pkg/overlaydiff).
//
// The state folder is 0700 (root only) and everything is mounted nosuid
// and nodev: a set-user-ID file the firmware makes in its layer, or a
// device node, gives a local user nothing.
//
// It is apart from package sandbox so that the /init, which links
// sandbox, does not carry it.
package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/atomicfile"
	"github.com/ofsroot/ofsroot/pkg/blockdev"
	"github.com/ofsroot/ofsroot/pkg/mountfs"
	"github.com/ofsroot/ofsroot/pkg/overlaydiff"
	"github.com/ofsroot/ofsroot/pkg/sandbox"
)

// DefaultStateDir is where the desktop runner keeps its instances.
const DefaultStateDir = "/var/lib/ofsroot-sandbox"

// Firmware kinds.
const (
	KindDir   = "dir"   // a developer's folder, bound read-only
	KindImage = "image" // an ext2/3/4 or squashfs image, loop-mounted read-only
)

// Instance is one named run of a firmware, with its own writable layer.
// Its folder in the store holds instance.json, lock (held by the runner
// while it runs), and the layers as firmwared has them: ro (the firmware,
// read-only), upper and work (the instance's changes), union (the
// overlay the firmware runs in).
type Instance struct {
	Name     string      `json:"name"`
	Firmware string      `json:"firmware"` // absolute path of the folder or image
	Kind     string      `json:"kind"`
	Hash     string      `json:"sha256"` // the firmware's, when the instance was made
	Net      sandbox.Net `json:"net"`
	// PID is the runner's process while it runs.
	PID int `json:"pid,omitempty"`
	// LastEnding says how the firmware last ended.
	LastEnding string `json:"last_ending,omitempty"`
	// LayerSize is the size of the instance's layer image, in bytes,
	// fixed when it was made.
	LayerSize int64 `json:"layer_size,omitempty"`
	// UIDBase is the first host uid (and gid) of the instance's user
	// namespace range (DefaultIDCount long; 0: none picked yet).
	UIDBase uint32 `json:"uid_base,omitempty"`
}

// IDMap is the instance's user namespace mapping.
func (i *Instance) IDMap() sandbox.IDMap {
	return sandbox.IDMap{Host: i.UIDBase, Count: sandbox.DefaultIDCount}
}

// The ranges instances pick from, as systemd-nspawn's: 64 Ki uids each,
// from 0x00080000 below 0x6fff0000.
const (
	firstUIDBase = 0x00080000
	uidRanges    = (0x6fff0000 - firstUIDBase) / sandbox.DefaultIDCount
)

// PickUIDBase gives instance i a uid range of its own: the one its name
// hashes to, or the next one no other instance holds.
func (s Store) PickUIDBase(i *Instance) error {
	if i.UIDBase != 0 {
		return nil
	}
	list, err := s.List()
	if err != nil {
		return err
	}
	used := map[uint32]bool{}
	for _, o := range list {
		if o.Name != i.Name {
			used[o.UIDBase] = true
		}
	}
	h := fnv.New32a()
	h.Write([]byte(i.Name))
	k := h.Sum32() % uidRanges
	for n := uint32(0); n < uidRanges; n++ {
		base := firstUIDBase + ((k+n)%uidRanges)*sandbox.DefaultIDCount
		if !used[base] {
			i.UIDBase = base
			return nil
		}
	}
	return errors.New("no free uid range left for an instance")
}

// DefaultLayerSize is an instance layer's size unless asked otherwise.
const DefaultLayerSize = 1 << 30

// Store is the state folder.
type Store struct{ Dir string }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// CheckName says whether name can name an instance: 1-32 of a-z 0-9 _ -,
// starting with a letter or digit.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("instance name %q: want 1-32 of a-z, 0-9, '_', '-', starting with a letter or digit", name)
	}
	return nil
}

// Paths of an instance's parts.
func (s Store) dir(name string) string   { return filepath.Join(s.Dir, "instances", name) }
func (s Store) Lower(name string) string { return filepath.Join(s.dir(name), "ro") }
func (s Store) Image(name string) string { return filepath.Join(s.dir(name), "layer.img") }
func (s Store) Layer(name string) string { return filepath.Join(s.dir(name), "layer") }
func (s Store) Upper(name string) string { return filepath.Join(s.Layer(name), "upper") }
func (s Store) Work(name string) string  { return filepath.Join(s.Layer(name), "work") }
func (s Store) Union(name string) string { return filepath.Join(s.dir(name), "union") }

// The idmapped views of ro and layer, for an instance in a user
// namespace.
func (s Store) idLower(name string) string { return filepath.Join(s.dir(name), "ro.idmapped") }
func (s Store) idLayer(name string) string { return filepath.Join(s.dir(name), "layer.idmapped") }

// ErrNoInstance is returned for a name the store does not have.
var ErrNoInstance = errors.New("no such instance")

// Load reads an instance's record.
func (s Store) Load(name string) (*Instance, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.dir(name), "instance.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (ofsroot sandbox list shows them)", name, ErrNoInstance)
	}
	if err != nil {
		return nil, err
	}
	var i Instance
	if err := json.Unmarshal(b, &i); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(s.dir(name), "instance.json"), err)
	}
	return &i, nil
}

// private makes the state folder and its instances folder 0711: no
// one but root lists them, and each instance's folder is 0700, root's,
// or its user namespace root's (which must reach its union). (An older
// state folder was 0755.)
func (s Store) private() error {
	for _, d := range []string{s.Dir, filepath.Join(s.Dir, "instances")} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return err
		}
	}
	return nil
}

// Save writes an instance's record atomically, making its folders.
func (s Store) Save(i *Instance) error {
	if err := s.private(); err != nil {
		return err
	}
	for _, d := range []string{s.Lower(i.Name), s.Layer(i.Name), s.Union(i.Name), s.idLower(i.Name), s.idLayer(i.Name)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	owner := 0
	if i.UIDBase != 0 {
		owner = int(i.UIDBase)
	}
	if err := os.Chown(s.dir(i.Name), owner, owner); err != nil {
		return err
	}
	if err := os.Chmod(s.dir(i.Name), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(i, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(s.dir(i.Name), "instance.json"), append(b, '\n'), 0o644)
}

// List returns every instance, by name.
func (s Store) List() ([]*Instance, error) {
	entries, err := os.ReadDir(filepath.Join(s.Dir, "instances"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Instance
	for _, e := range entries {
		if i, err := s.Load(e.Name()); err == nil {
			out = append(out, i)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

// Lock takes the instance's run lock; it fails with EWOULDBLOCK when a
// runner holds it. The lock goes with the returned file (closed at
// exit, even a crash).
func (s Store) Lock(name string) (*os.File, error) {
	if err := s.private(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.dir(name), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.dir(name), "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Running says whether a runner holds the instance's lock.
func (s Store) Running(name string) bool {
	f, err := s.Lock(name)
	if err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	f.Close()
	return false
}

// HashFirmware identifies a firmware: the SHA-256 of an image file, or
// of a folder's sorted listing (path, type, mode, owner, size, link
// target) and file contents. It returns the kind too.
func HashFirmware(path string) (hash, kind string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", "", err
	}
	h := sha256.New()
	if fi.Mode().IsRegular() {
		f, err := os.Open(path)
		if err != nil {
			return "", "", err
		}
		defer f.Close()
		if _, err := io.Copy(h, f); err != nil {
			return "", "", err
		}
		return hex.EncodeToString(h.Sum(nil)), KindImage, nil
	}
	if !fi.IsDir() {
		return "", "", fmt.Errorf("firmware %s: neither a folder nor an image file", path)
	}
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(path, p)
		var uid, gid uint32
		if st, ok := info.Sys().(*unix.Stat_t); ok {
			uid, gid = st.Uid, st.Gid
		}
		fmt.Fprintf(h, "%q %v %d:%d %d", rel, info.Mode(), uid, gid, info.Size())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, " -> %q", t)
		case info.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		h.Write([]byte{'\n'})
		return nil
	})
	if err != nil {
		return "", "", err
	}
	return hex.EncodeToString(h.Sum(nil)), KindDir, nil
}

// MountLower mounts the firmware read-only at the instance's ro folder:
// a folder by a read-only bind, an image through a read-only loop device
// that goes away by itself when unmounted (LO_FLAGS_AUTOCLEAR).
func (s Store) MountLower(i *Instance) error {
	dst := s.Lower(i.Name)
	if i.Kind == KindDir {
		if err := mountfs.Mount(i.Firmware, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		return mountfs.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, "")
	}
	img, err := os.Open(i.Firmware)
	if err != nil {
		return err
	}
	defer img.Close()
	fstype, _, _, err := blockdev.ProbeFS(img)
	if err != nil || fstype == "" {
		return fmt.Errorf("firmware image %s: no ext2/3/4 or squashfs filesystem found (%v)", i.Firmware, err)
	}
	types := []string{fstype}
	switch fstype {
	case "ext2", "ext3", "ext4", "squashfs":
		if fstype != "ext4" && fstype != "squashfs" {
			types = append(types, "ext4")
		}
	default:
		return fmt.Errorf("firmware image %s holds %s; want ext2/3/4 or squashfs", i.Firmware, fstype)
	}
	loop, err := attachLoop(img, true)
	if err != nil {
		return fmt.Errorf("loop device for %s: %w", i.Firmware, err)
	}
	// Closing our handle leaves the mount as the loop's only user.
	defer loop.Close()
	var errs []error
	for _, t := range types {
		err := mountfs.Mount(loop.Name(), dst, t, unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID, "")
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// attachLoop binds img to a free loop device, auto-clearing (read-only
// when asked).
func attachLoop(img *os.File, readOnly bool) (*os.File, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	var lastErr error
	for attempt := 0; attempt < 8; attempt++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("LOOP_CTL_GET_FREE: %w", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		if _, err := os.Stat(dev); errors.Is(err, fs.ErrNotExist) {
			// No udev (a container, an initramfs): make the node.
			if err := unix.Mknod(dev, unix.S_IFBLK|0o660, int(unix.Mkdev(7, uint32(n)))); err != nil && !errors.Is(err, unix.EEXIST) {
				return nil, fmt.Errorf("mknod %s: %w", dev, err)
			}
		}
		// The loop device is read-only unless opened for writing too.
		mode := os.O_RDWR
		if readOnly {
			mode = os.O_RDONLY
		}
		f, err := os.OpenFile(dev, mode, 0)
		if err != nil {
			return nil, err
		}
		cfg := unix.LoopConfig{Fd: uint32(img.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		if readOnly {
			cfg.Info.Flags |= unix.LO_FLAGS_READ_ONLY
		}
		copy(cfg.Info.File_name[:], img.Name())
		err = unix.IoctlLoopConfigure(int(f.Fd()), &cfg)
		if err == nil {
			return f, nil
		}
		f.Close()
		lastErr = err
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		// Someone took it between GET_FREE and CONFIGURE: next one.
	}
	return nil, fmt.Errorf("LOOP_CONFIGURE: %w", lastErr)
}

// MakeLayer makes the instance's layer image when it has none: size
// bytes, allocated at once (fallocate), so that the host's disk cannot
// fill later under it, holding an empty ext4 (mkfs.ext4, no reserved
// blocks). An instance with an image keeps its size.
func (s Store) MakeLayer(i *Instance, size int64) error {
	img := s.Image(i.Name)
	if _, err := os.Stat(img); err == nil {
		return nil
	}
	if legacy := filepath.Join(s.dir(i.Name), "upper"); exists(legacy) {
		return fmt.Errorf("instance %s was made by an older ofsroot (its layer %s has no size cap): copy out what you need, then ofsroot sandbox drop %s", i.Name, legacy, i.Name)
	}
	if size < 8<<20 {
		return fmt.Errorf("layer size %d bytes: want at least 8 MiB", size)
	}
	f, err := os.OpenFile(img+".tmp", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = unix.Fallocate(int(f.Fd()), 0, 0, size)
	f.Close()
	if err != nil {
		os.Remove(img + ".tmp")
		return fmt.Errorf("reserving %d bytes for the layer of %s (%s): %w", size, i.Name, img, err)
	}
	out, err := exec.Command("mkfs.ext4", "-q", "-F", "-m", "0", "-E", "root_owner=0:0", img+".tmp").CombinedOutput()
	if err != nil {
		os.Remove(img + ".tmp")
		return fmt.Errorf("mkfs.ext4 %s: %v: %s (install e2fsprogs)", img, err, strings.TrimSpace(string(out)))
	}
	i.LayerSize = size
	return os.Rename(img+".tmp", img)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// MountLayer mounts the instance's layer image (read-write, or read-only
// for a diff) nosuid and nodev, and makes upper and work in it.
func (s Store) MountLayer(name string, readOnly bool) error {
	img, err := os.OpenFile(s.Image(name), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("the instance's layer: %w", err)
	}
	defer img.Close()
	loop, err := attachLoop(img, readOnly)
	if err != nil {
		return fmt.Errorf("loop device for %s: %w", s.Image(name), err)
	}
	defer loop.Close()
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	if err := mountfs.Mount(loop.Name(), s.Layer(name), "ext4", flags, ""); err != nil {
		return err
	}
	if readOnly {
		return nil
	}
	for _, d := range []string{s.Upper(name), s.Work(name)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// unionFlags are the overlay's: a set-user-ID file or a device node in
// the instance's layer works for nobody, inside or out.
const unionFlags = unix.MS_NOSUID | unix.MS_NODEV

// MountUnion mounts the instance's overlay: ro under upper. With
// userns, the layers are seen through idmapped mounts of i's range, so
// that the firmware's root (i.UIDBase on the host) owns what root owns
// on them, and what it writes is stored as root's.
func (s Store) MountUnion(i *Instance, userns bool) error {
	if !userns {
		return mountfs.Mount("ofsroot-sandbox-"+i.Name, s.Union(i.Name), "overlay", unionFlags, s.unionData(i.Name, false))
	}
	if err := sandbox.IDMapped(s.Lower(i.Name), s.idLower(i.Name), i.IDMap()); err != nil {
		return fmt.Errorf("%w (--userns no runs it without a user namespace)", err)
	}
	if err := sandbox.IDMapped(s.Layer(i.Name), s.idLayer(i.Name), i.IDMap()); err != nil {
		return fmt.Errorf("%w (--userns no runs it without a user namespace)", err)
	}
	return sandbox.MountOverlayAs(i.IDMap(), "ofsroot-sandbox-"+i.Name, s.Union(i.Name), unionFlags, s.unionData(i.Name, true))
}

func (s Store) unionData(name string, idmapped bool) string {
	lower, layer := s.Lower(name), s.Layer(name)
	if idmapped {
		lower, layer = s.idLower(name), s.idLayer(name)
	}
	return fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, filepath.Join(layer, "upper"), filepath.Join(layer, "work"))
}

// Remount makes the running instance's overlay see what changed in its
// firmware folder since it was mounted (files replaced in a developer's
// folder stay cached otherwise): mount -o remount on the union, the
// seed's recipe.
func (s Store) Remount(name string) error {
	i, err := s.Load(name)
	if err != nil {
		return err
	}
	if i.Kind != KindDir {
		return fmt.Errorf("%s runs an image (%s): remount picks up changes to a firmware folder only; stop it and run it again", name, i.Firmware)
	}
	if !s.Running(name) {
		return fmt.Errorf("%s is not running: the next run sees the folder as it is", name)
	}
	// The layers must be named again, as mount(8) does: overlayfs
	// refuses a remount that would change them (EINVAL).
	b, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return err
	}
	idmapped := len(Mounted(string(b), s.idLower(name))) > 0
	return mountfs.Mount("ofsroot-sandbox-"+name, s.Union(name), "overlay", unix.MS_REMOUNT|unix.MS_RELATIME|unionFlags, s.unionData(name, idmapped))
}

// Mounted lists the mount points at or under dir, deepest first (of
// equal depth, the last mounted first: the union before its layer), from
// mountinfo text.
func Mounted(mountinfo, dir string) []string {
	var out []string
	for _, line := range strings.Split(mountinfo, "\n") {
		m, err := mountfs.ParseMountinfoLine(line)
		if p := m.Point; err == nil && (p == dir || strings.HasPrefix(p, dir+"/")) {
			out = append([]string{p}, out...)
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return len(out[a]) > len(out[b]) })
	return out
}

// Unmount unmounts everything at or under the instance's folder,
// deepest first (lazily when busy). Nothing is left mounted.
func (s Store) Unmount(name string) error {
	var errs []error
	for pass := 0; pass < 4; pass++ {
		b, err := os.ReadFile("/proc/thread-self/mountinfo")
		if err != nil {
			return err
		}
		points := Mounted(string(b), s.dir(name))
		if len(points) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, p := range points {
			if err := unix.Unmount(p, 0); err != nil {
				if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
					errs = append(errs, &mountfs.Error{Op: "umount -l", Target: p, Err: err})
				}
			}
		}
	}
	if len(errs) == 0 {
		return fmt.Errorf("%s: still mounted after unmounting four times", s.dir(name))
	}
	return errors.Join(errs...)
}

// CleanStale unmounts what earlier runs left mounted for instances no
// runner holds (a runner killed with SIGKILL, a crash), and returns their
// names.
func (s Store) CleanStale() ([]string, error) {
	list, err := s.List()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return nil, err
	}
	var cleaned []string
	var errs []error
	for _, i := range list {
		if s.Running(i.Name) {
			continue
		}
		stale, err := sandbox.RemoveStaleCgroup(i.Name)
		if err != nil {
			errs = append(errs, err)
		}
		if len(Mounted(string(b), s.dir(i.Name))) > 0 {
			if err := s.Unmount(i.Name); err != nil {
				errs = append(errs, err)
				continue
			}
			cleaned = append(cleaned, i.Name)
		} else if stale {
			cleaned = append(cleaned, i.Name)
		}
		if i.PID != 0 {
			i.PID = 0
			s.Save(i)
		}
	}
	return cleaned, errors.Join(errs...)
}

// Drop removes an instance that is not running: its mounts and its
// layer.
func (s Store) Drop(name string) error {
	if _, err := s.Load(name); err != nil {
		return err
	}
	if s.Running(name) {
		return fmt.Errorf("%s is running: ofsroot sandbox stop %s first", name, name)
	}
	if err := s.Unmount(name); err != nil {
		return err
	}
	return os.RemoveAll(s.dir(name))
}

// Diff lists what the instance changed against its firmware. When the
// instance is not running, the firmware is mounted for the time of the
// diff in a private mount namespace of a thread of its own, so nothing
// stays mounted and nobody else sees it.
func (s Store) Diff(name string, o overlaydiff.Options) ([]overlaydiff.Change, error) {
	i, err := s.Load(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return nil, err
	}
	if len(Mounted(string(b), s.Lower(name))) > 0 {
		return overlaydiff.Diff(s.Lower(name), s.Upper(name), o)
	}
	type result struct {
		c   []overlaydiff.Change
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The thread is never unlocked: Go ends it with the goroutine,
		// and the private namespace with it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			done <- result{err: fmt.Errorf("unshare(CLONE_NEWNS): %w", err)}
			return
		}
		if err := mountfs.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			done <- result{err: err}
			return
		}
		if err := s.MountLower(i); err != nil {
			done <- result{err: err}
			return
		}
		defer unix.Unmount(s.Lower(name), unix.MNT_DETACH)
		if err := s.MountLayer(name, true); err != nil {
			done <- result{err: err}
			return
		}
		defer unix.Unmount(s.Layer(name), unix.MNT_DETACH)
		c, err := overlaydiff.Diff(s.Lower(name), s.Upper(name), o)
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}
