package modload

import (
	"github.com/ofsroot/ofsroot/internal/testenv"

	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
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
