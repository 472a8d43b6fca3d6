package modload

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// The module syscalls, as variables so that tests can stand in for them.
var (
	finitModule = unix.FinitModule
	initModule  = unix.InitModule
)

// LoadError is a failed module load. It keeps the errno, so that
// errors.Is(err, unix.EEXIST) ("already loaded") and
// errors.Is(err, unix.ENODEV) ("no such hardware") work.
type LoadError struct {
	Module string // module name, e.g. "ext4"
	Path   string // module file
	Params string // parameters given
	Op     string // "open", "read", "finit_module" or "init_module"
	Err    error  // usually a unix.Errno
}

func (e *LoadError) Error() string {
	op := e.Op
	if e.Params != "" {
		op = fmt.Sprintf("%s with %q", e.Op, e.Params)
	}
	return fmt.Sprintf("load module %s (%s): %s: %v", e.Module, e.Path, op, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }

// Load loads the kernel module in file path with the given parameters
// ("" for none). It uses finit_module(2), so the kernel reads the file
// itself, and falls back to init_module(2) with the file's contents on
// kernels without finit_module (ENOSYS). The file must be an
// uncompressed .ko: finit_module on a compressed file needs a kernel
// built with in-kernel decompression.
//
// Side effects: the module is linked into the running kernel. Needs
// CAP_SYS_MODULE.
func Load(path, params string) error {
	fail := func(op string, err error) error {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is already in LoadError
		}
		return &LoadError{Module: NameFromPath(path), Path: path, Params: params, Op: op, Err: err}
	}
	f, err := os.Open(path)
	if err != nil {
		return fail("open", err)
	}
	defer f.Close()
	err = finitModule(int(f.Fd()), params, 0)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) {
		return fail("finit_module", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fail("read", err)
	}
	if err := initModule(data, params); err != nil {
		return fail("init_module", err)
	}
	return nil
}
