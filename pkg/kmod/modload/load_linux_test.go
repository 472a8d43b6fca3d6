package modload

import (
	"github.com/ofsroot/ofsroot/internal/testenv"

	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/rootfile"
)

// fakeSyscalls replaces the module syscalls for one test.
func fakeSyscalls(t *testing.T, finit func(int, string, int) error, init func([]byte, string) error) {
	t.Helper()
	oldF, oldI := finitModule, initModule
	finitModule, initModule = finit, init
	t.Cleanup(func() { finitModule, initModule = oldF, oldI })
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	mod := filepath.Join(dir, "crc32c-intel.ko")
	os.WriteFile(mod, []byte("module bytes"), 0o644)

	for _, tc := range []struct {
		name     string
		finitErr error
		initErr  error
		params   string
		wantErr  error
		wantOp   string
		initUsed bool
	}{
		{"loaded", nil, nil, "", nil, "", false},
		{"already present", unix.EEXIST, nil, "", unix.EEXIST, "finit_module", false},
		{"no hardware", unix.ENODEV, nil, "x=1", unix.ENODEV, "finit_module", false},
		{"old kernel falls back", unix.ENOSYS, nil, "", nil, "", true},
		{"old kernel, init_module fails", unix.ENOSYS, unix.EEXIST, "", unix.EEXIST, "init_module", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var initData []byte
			var initParams string
			used := false
			fakeSyscalls(t,
				func(fd int, params string, flags int) error {
					if params != tc.params || flags != 0 {
						t.Errorf("finit_module(%d, %q, %d)", fd, params, flags)
					}
					return tc.finitErr
				},
				func(data []byte, params string) error {
					used, initData, initParams = true, data, params
					return tc.initErr
				})
			err := Load(mod, tc.params)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("Load: %v, want %v", err, tc.wantErr)
			}
			if used != tc.initUsed {
				t.Errorf("init_module used: %v", used)
			}
			if used && (string(initData) != "module bytes" || initParams != tc.params) {
				t.Errorf("init_module(%q, %q)", initData, initParams)
			}
			if err == nil {
				return
			}
			var le *LoadError
			if !errors.As(err, &le) || le.Module != "crc32c_intel" || le.Op != tc.wantOp || le.Path != mod {
				t.Errorf("error %#v", err)
			}
			if !strings.Contains(err.Error(), "load module crc32c_intel ("+mod+"): "+tc.wantOp) {
				t.Errorf("message %q", err)
			}
		})
	}

	// A missing file keeps ENOENT and does not repeat the path.
	err := Load(filepath.Join(dir, "ext4.ko"), "")
	var le *LoadError
	if !errors.Is(err, unix.ENOENT) || !errors.As(err, &le) || le.Op != "open" || le.Module != "ext4" {
		t.Errorf("missing file: %v", err)
	}
	if strings.Count(err.Error(), "ext4.ko") != 1 {
		t.Errorf("message repeats the path: %q", err)
	}
}

// TestLoadRealSyscall hands the running kernel a file that is not a
// module: it must refuse, and the error must keep its errno.
func TestLoadRealSyscall(t *testing.T) {
	testenv.NeedRoot(t, "finit_module needs CAP_SYS_MODULE")
	p := filepath.Join(t.TempDir(), "not-a-module.ko")
	os.WriteFile(p, []byte("this is not an ELF file"), 0o644)
	err := Load(p, "")
	var le *LoadError
	var errno unix.Errno
	if !errors.As(err, &le) || !errors.As(err, &errno) {
		t.Fatalf("Load of a non-module: %v (%T)", err, err)
	}
	t.Logf("kernel said: %v", err)
}

// TestLoadCompressed: a compressed module goes to finit_module with
// MODULE_INIT_COMPRESSED_FILE; a kernel that cannot decompress refuses,
// and the error keeps the errno, says why, and never falls back to
// init_module (which would get compressed bytes).
func TestLoadCompressed(t *testing.T) {
	mod := filepath.Join(t.TempDir(), "overlay.ko.xz")
	os.WriteFile(mod, []byte("\xfd7zXZ\x00 compressed module"), 0o644)
	for _, tc := range []struct {
		name     string
		finitErr error
		hint     bool
	}{
		{"the kernel decompresses", nil, false},
		{"no CONFIG_MODULE_DECOMPRESS", unix.EOPNOTSUPP, true},
		{"kernel before 5.17, or a bad stream", unix.EINVAL, true},
		{"no finit_module", unix.ENOSYS, true},
		{"already loaded", unix.EEXIST, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotFlags int
			fakeSyscalls(t,
				func(fd int, params string, flags int) error { gotFlags = flags; return tc.finitErr },
				func(data []byte, params string) error {
					t.Errorf("init_module called with %d compressed bytes", len(data))
					return nil
				})
			err := LoadCompressed(mod, "")
			if gotFlags != unix.MODULE_INIT_COMPRESSED_FILE {
				t.Errorf("finit_module flags %#x, want MODULE_INIT_COMPRESSED_FILE", gotFlags)
			}
			if !errors.Is(err, tc.finitErr) || (err == nil) != (tc.finitErr == nil) {
				t.Fatalf("LoadCompressed: %v, want %v", err, tc.finitErr)
			}
			if err == nil {
				return
			}
			var le *LoadError
			if !errors.As(err, &le) || le.Module != "overlay" || le.Path != mod {
				t.Errorf("error %#v", err)
			}
			if got := strings.Contains(err.Error(), "CONFIG_MODULE_DECOMPRESS"); got != tc.hint {
				t.Errorf("message %q: hint %v, want %v", err, got, tc.hint)
			}
		})
	}
	// Plain Load passes no flag.
	var flags = -1
	fakeSyscalls(t, func(fd int, params string, f int) error { flags = f; return nil }, nil)
	Load(mod, "")
	if flags != 0 {
		t.Errorf("Load passed flags %#x", flags)
	}
}

// TestLoadCompressedRealSyscall hands the running kernel a compressed
// file that is no module: it must refuse, whether or not it can
// decompress, and the error must keep its errno.
func TestLoadCompressedRealSyscall(t *testing.T) {
	testenv.NeedRoot(t, "finit_module needs CAP_SYS_MODULE")
	p := filepath.Join(t.TempDir(), "not-a-module.ko.xz")
	os.WriteFile(p, []byte("\xfd7zXZ\x00\x00\x01 not an xz stream"), 0o644)
	err := LoadCompressed(p, "")
	var errno unix.Errno
	if !errors.As(err, &errno) {
		t.Fatalf("LoadCompressed of a non-module: %v (%T)", err, err)
	}
	t.Logf("kernel said: %v", err)
}

func TestNameFromPathCompressed(t *testing.T) {
	for in, want := range map[string]string{
		"/x/overlay.ko": "overlay", "/x/crc32c-intel.ko.xz": "crc32c_intel", "a.ko.zst": "a", "/b/sdhci-pltfm.ko.gz": "sdhci_pltfm",
	} {
		if got := NameFromPath(in); got != want {
			t.Errorf("NameFromPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLoadRefusesFIFO: a module path that names a FIFO (a hostile root's,
// in the stale-initramfs fallback) is refused without being opened for
// reading, which would block until a writer came: for ever, in PID 1.
func TestLoadRefusesFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "overlay.ko")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	called := false
	saved := finitModule
	finitModule = func(int, string, int) error { called = true; return nil }
	t.Cleanup(func() { finitModule = saved })
	done := make(chan error, 1)
	go func() { done <- Load(p, "") }()
	select {
	case err := <-done:
		if !errors.Is(err, rootfile.ErrNotRegular) || called {
			t.Errorf("Load of a FIFO: %v (finit_module called: %v), want ErrNotRegular", err, called)
		}
	case <-time.After(30 * time.Second):
		if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		t.Fatal("Load of a FIFO hung")
	}
}
