package rootfile

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// hostileRoot builds a root with every kind of /etc entry the init may
// meet on a card.
func hostileRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"etc", "dev", "proc/self", "sbin", "lib/systemd"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, p string) {
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/fstab.real", "LABEL=data /data ext4 defaults 0 2\n")
	link("/etc/fstab.real", "etc/abs")                    // absolute: inside the root
	link("../../../../../../proc/self/mounts", "etc/rel") // climbs: stays inside
	link("/dev/zero", "etc/zero")
	link("loop2", "etc/loop1")
	link("loop1", "etc/loop2")
	if err := unix.Mkfifo(filepath.Join(root, "etc/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() == 0 {
		if err := unix.Mknod(filepath.Join(root, "dev/zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(filepath.Join(root, "etc/blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("unix", filepath.Join(root, "etc/sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	f, err := os.Create(filepath.Join(root, "etc/huge"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(DefaultLimit + 1) // sparse: costs nothing on disk
	f.Close()
	write("etc/edge", strings.Repeat("x", DefaultLimit))
	return root
}

// withFallback runs the test body with openat2 reporting ENOSYS, as on
// a kernel before 5.6.
func withFallback(t *testing.T) {
	saved := openat2
	openat2 = func(int, string, *unix.OpenHow) (int, error) { return -1, unix.ENOSYS }
	t.Cleanup(func() { openat2 = saved })
}

func TestReadFile(t *testing.T) {
	for _, mode := range []string{"openat2", "fallback"} {
		t.Run(mode, func(t *testing.T) {
			root := hostileRoot(t)
			if mode == "fallback" {
				withFallback(t)
			}
			for _, tc := range []struct {
				path string
				want string // content, or the error text
				err  error
			}{
				{"/etc/fstab.real", "LABEL=data", nil},
				{"/etc/abs", "LABEL=data", nil},
				{"etc/abs", "LABEL=data", nil},
				{"/etc/rel", "no such file", unix.ENOENT}, // root's /proc/self/mounts: absent
				{"/../../etc/abs", "LABEL=data", nil},
				{"/etc/fifo", "is a FIFO", ErrNotRegular},
				{"/etc/sock", "is a socket", ErrNotRegular},
				{"/etc", "is a folder", ErrNotRegular},
				{"/etc/huge", "larger than the read limit", ErrTooLarge},
				{"/etc/edge", "xxxx", nil},
				{"/etc/loop1", "too many levels", unix.ELOOP},
				{"/etc/missing", "no such file", os.ErrNotExist},
			} {
				data, err := ReadFile(root, tc.path, 0)
				switch {
				case tc.err == nil && (err != nil || !strings.Contains(string(data), tc.want)):
					t.Errorf("%s: %.40q, %v; want %q", tc.path, data, err, tc.want)
				case tc.err != nil && (!errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.want)):
					t.Errorf("%s: %.40q, %v; want an error %q (%v)", tc.path, data, err, tc.want, tc.err)
				}
			}
			if os.Getuid() != 0 {
				return
			}
			for path, want := range map[string]string{"/etc/zero": "is a character device", "/dev/zero": "is a character device", "/etc/blk": "is a block device"} {
				if _, err := ReadFile(root, path, 0); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), want) {
					t.Errorf("%s: %v, want %q", path, err, want)
				}
			}
		})
	}
}

// TestNaiveReadsAreTheFault shows what the package prevents: a plain
// read of the root's path follows an absolute link to the host's file
// (here: to nothing, so a real fstab is missed), a climbing link out of
// the root, and blocks on a FIFO until someone writes it.
func TestNaiveReadsAreTheFault(t *testing.T) {
	root := hostileRoot(t)
	if _, err := os.ReadFile(filepath.Join(root, "etc/abs")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a plain read followed /etc/fstab.real inside the root? %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(root, "etc/rel")); err != nil || len(data) == 0 {
		t.Errorf("a plain read did not climb out to the host's mounts: %v", err)
	}
	got := make(chan string)
	go func() {
		data, _ := os.ReadFile(filepath.Join(root, "etc/fifo"))
		got <- string(data)
	}()
	// Opening the writer end completes only once the reader is blocked
	// in its open: the plain read was waiting for a writer that, at
	// boot, never comes.
	w, err := os.OpenFile(filepath.Join(root, "etc/fifo"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("from the writer")
	w.Close()
	if s := <-got; s != "from the writer" {
		t.Errorf("plain FIFO read got %q", s)
	}
}

func TestStat(t *testing.T) {
	root := hostileRoot(t)
	os.WriteFile(filepath.Join(root, "lib/systemd/systemd"), []byte("#!"), 0o755)
	os.Symlink("/lib/systemd/systemd", filepath.Join(root, "sbin/init"))
	fi, err := Stat(root, "/sbin/init")
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o755 {
		t.Errorf("Stat /sbin/init = %v, %v", fi, err)
	}
	if fi, err := Stat(root, "/etc/fifo"); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("Stat fifo = %v, %v", fi, err)
	}
}

func TestResolveIn(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(root+"/lib/systemd", 0o755)
	os.MkdirAll(root+"/sbin", 0o755)
	os.WriteFile(root+"/lib/systemd/systemd", []byte("x"), 0o755)
	os.MkdirAll(root+"/etc", 0o755)
	os.WriteFile(root+"/etc/passwd", nil, 0o644)
	os.Symlink("/lib/systemd/systemd", root+"/sbin/init")      // absolute
	os.Symlink("../lib/systemd/systemd", root+"/sbin/rel")     // relative
	os.Symlink("/../../../../etc/passwd", root+"/sbin/escape") // must stay inside
	os.Symlink("loop2", root+"/sbin/loop1")
	os.Symlink("loop1", root+"/sbin/loop2")
	os.Symlink("/lib", root+"/usrlib")
	for in, want := range map[string]string{
		"/sbin/init":                   root + "/lib/systemd/systemd",
		"/sbin/rel":                    root + "/lib/systemd/systemd",
		"/sbin/escape":                 root + "/etc/passwd",
		"/usrlib/systemd/systemd":      root + "/lib/systemd/systemd",
		"/sbin/../lib/systemd/systemd": root + "/lib/systemd/systemd",
		"/nope":                        root + "/nope",
	} {
		got, err := ResolveIn(root, in)
		if err != nil || got != want {
			t.Errorf("ResolveIn(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ResolveIn(root, "/sbin/loop1"); err != unix.ELOOP {
		t.Errorf("loop: %v", err)
	}
}
