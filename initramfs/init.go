package initramfs

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/internal/sourcetree"
	"github.com/ofsroot/ofsroot/pkg/version"
)

// readInit returns the init, the prebuilt one or cmd/init compiled for
// the board, once checked to run on the board.
func readInit(o Options) ([]byte, error) {
	data, err := initBinary(o)
	if err != nil {
		return nil, err
	}
	if err := checkInit(data, o.Board); err != nil {
		return nil, err
	}
	return data, nil
}

// initBinary returns the init: the prebuilt one, else the one shipped
// for the board's architecture, else cmd/init compiled for the board
// from the source tree.
func initBinary(o Options) ([]byte, error) {
	if o.InitBinary != "" {
		data, err := os.ReadFile(o.InitBinary)
		if err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
		return data, nil
	}
	dir := o.InitDir
	if dir == "" {
		dir = DefaultInitDir()
	}
	shipped := filepath.Join(dir, ShippedInitName(o.Board))
	data, err := os.ReadFile(shipped)
	if err == nil {
		o.Log("using the shipped init %s", shipped)
		return data, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("the shipped init: %w", err)
	}
	src := o.SourceDir
	if src == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		src = wd
	}
	root, err := sourcetree.Find(src)
	if err != nil {
		return nil, fmt.Errorf("no init for %s: %s does not exist (the ofsroot package ships one per architecture there), and %w: run from the ofsroot source tree, or pass a prebuilt init with --init", o.Board.Name, shipped, err)
	}
	tmp, err := os.MkdirTemp("", "ofsroot-init-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "init")
	cmd, err := GoBuildCommand(root, "./cmd/init", out, o.Board)
	if err != nil {
		return nil, err
	}
	o.Log("building the init: %s (in %s)", strings.Join(cmd.Args, " "), root)
	if output, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the init (%s, in %s): %v\n%s\nfix the build, or pass a prebuilt init with --init",
			strings.Join(cmd.Args, " "), root, err, strings.TrimSpace(string(output)))
	}
	return os.ReadFile(out)
}

// ShippedInitName is the name of the prebuilt init for the board's
// architecture in a package's init folder: init-amd64, init-arm64,
// init-armv7 (GOARCH, and GOARM after a "v" for 32-bit ARM).
func ShippedInitName(b board.Board) string {
	return "init-" + archName(b.GOARCH, b.GOARM)
}

func archName(goarch, goarm string) string {
	if goarch == "arm" && goarm != "" {
		return "armv" + goarm
	}
	return goarch
}

// DefaultInitDir is where the shipped inits are: ../lib/ofsroot from the
// running program's folder (/usr/lib/ofsroot for /usr/bin/ofsroot, and
// the same layout in the release tarball). A program run from elsewhere
// (go run, a test) finds none there and builds the init from source.
func DefaultInitDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "/usr/lib/ofsroot"
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	return filepath.Join(filepath.Dir(filepath.Dir(exe)), "lib", "ofsroot")
}

// GoBuildCommand returns the command that cross-compiles the package pkg
// (e.g. ./cmd/init) of the source tree at moduleRoot into out for the
// board: static (cgo off), stripped, with no build ID or VCS stamp so
// that builds repeat, and stamped with the builder's own version when it
// has one (see package version). The one cross-build helper: the boot
// lab builds its probe and ofsctl with it too.
func GoBuildCommand(moduleRoot, pkg, out string, b board.Board) (*exec.Cmd, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("no Go toolchain to build %s (%v): install Go, or pass a prebuilt init with --init", pkg, err)
	}
	ldflags := "-s -w -buildid="
	if x := version.LDFlag(version.Version); x != "" {
		ldflags += " " + x
	}
	cmd := exec.Command(goTool, "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, pkg)
	cmd.Args[0] = "go"
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+b.GOARCH, "GOARM="+b.GOARM)
	return cmd, nil
}

// elfMachines maps GOARCH to the ELF machine of its binaries.
var elfMachines = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"386":     elf.EM_386,
	"arm":     elf.EM_ARM,
	"arm64":   elf.EM_AARCH64,
	"riscv64": elf.EM_RISCV,
}

// checkInit refuses an init the board's kernel could not run: not ELF,
// another architecture, or dynamically linked (no libc in the image).
func checkInit(data []byte, b board.Board) error {
	if err := checkExecutable("init", data, b); err != nil {
		return fmt.Errorf("%w: rebuild it with CGO_ENABLED=0 GOOS=linux GOARCH=%s", err, b.GOARCH)
	}
	return nil
}

// checkExecutable refuses a program the board's kernel could not run from
// the initramfs: not ELF, another architecture, or dynamically linked.
func checkExecutable(what string, data []byte, b board.Board) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s is not an ELF executable (%v)", what, err)
	}
	if want, ok := elfMachines[b.GOARCH]; ok && f.Machine != want {
		return fmt.Errorf("%s is built for %s, board %s needs %s", what, f.Machine, b.Name, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked, and the initramfs has no libc", what)
		}
	}
	return nil
}
