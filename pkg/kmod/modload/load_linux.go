package modload

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/rootfile"
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
	return load(path, params, 0)
}

// LoadCompressed loads the compressed module file path (.ko.xz, .ko.zst,
// .ko.gz as a distribution installs them) and lets the kernel decompress
// it: finit_module(2) with MODULE_INIT_COMPRESSED_FILE, which needs Linux
// 5.17 or later built with CONFIG_MODULE_DECOMPRESS and that compression
// (Debian 13's kernels are; Debian 12's and Fedora's are not). A kernel
// that cannot refuses, and the error, which keeps its errno (EINVAL,
// EOPNOTSUPP, ENOSYS), says so.
//
// Side effects: as Load.
func LoadCompressed(path, params string) error {
	return load(path, params, unix.MODULE_INIT_COMPRESSED_FILE)
}

// errNoDecompress explains why a kernel refused a compressed module.
const errNoDecompress = "the kernel cannot load compressed modules itself (finit_module with MODULE_INIT_COMPRESSED_FILE needs Linux 5.17+ with CONFIG_MODULE_DECOMPRESS and this compression): give it an uncompressed module"

func load(path, params string, flags int) error {
	fail := func(op string, err error) error {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is already in LoadError
		}
		return &LoadError{Module: NameFromPath(path), Path: path, Params: params, Op: op, Err: err}
	}
	// Only a regular file is opened for reading (a module of a hostile
	// root may be a FIFO, which would block PID 1 for ever, or a device
	// node): see package rootfile.
	f, err := rootfile.Open("/", path)
	if err != nil {
		return fail("open", err)
	}
	defer f.Close()
	err = finitModule(int(f.Fd()), params, flags)
	if err == nil {
		return nil
	}
	if flags&unix.MODULE_INIT_COMPRESSED_FILE != 0 {
		// init_module takes no compressed image: no fallback.
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
			err = fmt.Errorf("%w (%s)", err, errNoDecompress)
		}
		return fail("finit_module(MODULE_INIT_COMPRESSED_FILE)", err)
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
