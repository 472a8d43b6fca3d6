// Package initramfs assembles the initramfs for a board: the static
// cgo-free ofsroot init for the board's architecture (shipped beside the
// program by the package, or cross-compiled from the source tree), the
// kernel modules the board lists with their dependencies in load order,
// and the /dev/console node, packed as a reproducible newc cpio archive
// compressed with gzip (default), xz or zstd.
//
// The same inputs give the same bytes: entries are sorted, owned by
// root, stamped with SourceDateEpoch, numbered in order, and the
// compressors run single-threaded with fixed settings. A kernel given as
// a .deb and as the folder `dpkg -x` made of it give the same archive.
package initramfs

import (
	"github.com/ofsroot/ofsroot/pkg/sandbox"

	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/pkg/debpkg"
	"github.com/ofsroot/ofsroot/pkg/kmod"
	"github.com/ofsroot/ofsroot/pkg/kmod/modload"
	"github.com/ofsroot/ofsroot/pkg/version"
)

// ModulePath is the Go module whose cmd/init is built when no prebuilt
// init is given.
const ModulePath = "github.com/ofsroot/ofsroot"

// BuildInfoFile is where the archive records how it was built.
const BuildInfoFile = "/etc/ofsroot/build.json"

// Dirs are the folders every initramfs has, beside those holding
// modules: the mount points the init uses and the API file systems.
var Dirs = []string{
	"/dev", "/proc", "/sys", "/run", "/mnt", "/mnt/root-RO", "/mnt/root-RW", "/newroot",
	"/etc", "/etc/ofsroot", "/lib", "/lib/modules",
}

// Options say what to build.
type Options struct {
	Board board.Board
	// Kernel is a Debian linux-image .deb or the folder `dpkg -x` left,
	// or a root folder (/ on a device) with installed kernels.
	Kernel string
	// KernelVersion picks the kernel's module tree when Kernel holds
	// several (/ on a device: /lib/modules/KernelVersion); "" when it
	// holds one.
	KernelVersion string
	// Output is the file to write.
	Output string
	// Compression is "gzip" (default), "xz", "zstd" or "none".
	Compression string
	// InitBinary, if set, is a prebuilt init to use. Else the init
	// shipped for the board's architecture in InitDir is used, and only
	// when there is none, cmd/init is built from the source tree.
	InitBinary string
	// InitDir is where the shipped inits are (named by ShippedInitName);
	// default: DefaultInitDir().
	InitDir string
	// WithoutModules leaves these modules out (by name), e.g. "overlay"
	// to test the fail-closed path.
	WithoutModules []string
	// Shell, if set, is a static shell for the board (busybox from
	// Debian's busybox-static, say), put at /bin/sh: with it,
	// ofs-rescue=shell gives a shell on the console when there is no
	// root to boot.
	Shell string
	// SandboxAppArmor compiles the firmware sandbox's AppArmor profile
	// with this host's apparmor_parser and carries it, so that
	// overlayfs=sandbox confines the firmware with it.
	SandboxAppArmor bool
	// Zram, if set, is a static mke2fs for the board (busybox from
	// Debian's busybox-static), put at /sbin/mke2fs with the zram
	// modules (ZramModules): what ofs-upper=zram needs (zram.go).
	Zram string
	// SourceDateEpoch is the time stamped on every archive entry.
	SourceDateEpoch int64

	// StripModules removes each module's appended signature and hides
	// its BTF section (kmod.StripSignature, kmod.StripBTF): the kernel
	// then neither hashes the whole file nor checks its type information
	// on every load, but it taints itself (E: unsigned module) and
	// refuses the modules when signatures are enforced
	// (module.sig_enforce=1, Secure Boot lockdown). For boards without
	// Secure Boot only.
	StripModules bool

	// ModuleParams are parameters for modules, by module name, written
	// to the module order file.
	ModuleParams map[string]string
	// SourceDir is where the search for the ofsroot source tree (a
	// go.mod of ModulePath here or in a parent) starts when InitBinary
	// is empty; default: the working directory.
	SourceDir string
	// Version is the ofsroot version recorded in build.json; default:
	// the builder's own (version.Get).
	Version string
	// Log, if set, is told about slow steps (unpacking, compiling).
	Log func(format string, args ...any)
}

// Result reports what was built.
type Result struct {
	KernelVersion     string
	Modules           []string // in load order, by path inside the archive
	UncompressedBytes int64
	CompressedBytes   int64
	SHA256            string

	// Output is the file written; Compression the method used.
	Output      string
	Compression string
	// ModuleNames are the module names, in load order.
	ModuleNames []string
	// Omitted are the modules left out because WithoutModules named
	// them.
	Omitted []string
	// Builtin are board modules the kernel has built in.
	Builtin []string
	// Warnings are things the image's user should know, e.g. a module
	// kept whose dependency was left out.
	Warnings []string
	// Notes are the resolver's remarks (soft dependencies skipped).
	Notes []string
	// ShellSHA256 is the rescue shell's hash, when one was put in.
	ShellSHA256 string
	// InitBytes and ModuleBytes are the sizes of /init and of all
	// modules (uncompressed); Entries counts archive entries.
	InitBytes   int64
	ModuleBytes int64
	Entries     int
}

// BuildInfo is the content of BuildInfoFile. It holds nothing that
// changes between two builds of the same inputs.
type BuildInfo struct {
	Board           string        `json:"board"`
	KernelVersion   string        `json:"kernel_version"`
	OfsrootVersion  string        `json:"ofsroot_version"`
	Compression     string        `json:"compression"`
	SourceDateEpoch int64         `json:"source_date_epoch"`
	InitSHA256      string        `json:"init_sha256"`
	ShellSHA256     string        `json:"shell_sha256,omitempty"`
	Modules         []BuildModule `json:"modules"`
	Builtin         []string      `json:"builtin,omitempty"`
	WithoutModules  []string      `json:"without_modules,omitempty"`
}

// BuildModule is one module in BuildInfo.
type BuildModule struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Params string `json:"params,omitempty"`
	Reason string `json:"reason"`
}

// Build writes the initramfs described by o.
//
// Side effects: unpacks a .deb kernel into a temporary folder (removed
// afterwards); without InitBinary and without a shipped init in
// InitDir, runs `go build` on the source tree (see SourceDir) into a
// temporary file; writes o.Output through a
// temporary file in the same folder, renamed into place at the end.
func Build(o Options) (*Result, error) {
	if o.Compression == "" {
		o.Compression = "gzip"
	}
	comp, ok := compressors[o.Compression]
	switch {
	case !ok:
		return nil, fmt.Errorf("unknown compression %q (known: %s)", o.Compression, strings.Join(Compressions, ", "))
	case o.Board.Name == "":
		return nil, errors.New("no board given")
	case o.Kernel == "":
		return nil, errors.New("no kernel given: pass a linux-image .deb or the folder `dpkg -x` made of one")
	case o.Output == "":
		return nil, errors.New("no output file given")
	case o.SourceDateEpoch < 0 || o.SourceDateEpoch > 1<<32-1:
		// newc keeps times as 8 hex digits.
		return nil, fmt.Errorf("source date epoch %d is outside what cpio can hold (0 to %d)", o.SourceDateEpoch, int64(1<<32-1))
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}

	// A prebuilt init is checked first, before a slow unpacking; one
	// built from source after the kernel, whose errors are cheaper.
	var initData []byte
	var err error
	if o.InitBinary != "" {
		if initData, err = readInit(o); err != nil {
			return nil, err
		}
	}

	root, cleanup, err := openKernel(o.Kernel, o.Log)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	tree, err := kmod.OpenTree(root, o.KernelVersion)
	switch {
	case errors.Is(err, kmod.ErrNoTree) && root != o.Kernel:
		return nil, fmt.Errorf("kernel %s: the package has no %s/VERSION folder: give a linux-image package (not linux-image-amd64, which only depends on one)",
			o.Kernel, strings.Join(kmod.ModulesDirs, "/VERSION or "))
	case errors.Is(err, kmod.ErrNoTree):
		return nil, err // it names the folder and says what to do
	case err != nil:
		return nil, fmt.Errorf("kernel %s: %w", o.Kernel, err)
	}
	plan, err := tree.Plan(boardModules(o)) // zram.go
	if err != nil {
		return nil, fmt.Errorf("board %s, kernel %s: %w", o.Board.Name, tree.Version, err)
	}
	if initData == nil {
		if initData, err = readInit(o); err != nil {
			return nil, err
		}
	}
	res := &Result{
		KernelVersion: tree.Version,
		Output:        o.Output,
		Compression:   o.Compression,
		Builtin:       plan.Builtin,
		Notes:         plan.Notes,
		InitBytes:     int64(len(initData)),
	}
	mods, err := leaveOut(plan.Modules, o.WithoutModules, o.Board.Name, res)
	if err != nil {
		return nil, err
	}
	params := map[string]string{}
	for name, p := range o.ModuleParams {
		if !slicesContainsModule(mods, name) {
			return nil, fmt.Errorf("parameters given for module %s, which is not in the image", name)
		}
		params[kmod.NormalizeName(name)] = strings.TrimSpace(p)
	}
	for _, m := range mods {
		if v := strings.Fields(m.Info.Vermagic); len(v) > 0 && v[0] != tree.Version {
			return nil, fmt.Errorf("module %s was built for kernel %s, not %s: the module tree is mixed up", m.File, v[0], tree.Version)
		}
	}

	a := newArchive(o.SourceDateEpoch)
	for _, d := range Dirs {
		a.dir(d)
	}
	a.add(cpio.CharDev("/dev/console", 0o600, 5, 1))
	a.file("/init", 0o755, initData)
	if o.Shell != "" {
		sh, err := os.ReadFile(o.Shell)
		if err != nil {
			return nil, fmt.Errorf("the rescue shell: %w", err)
		}
		if err := checkExecutable("the shell "+o.Shell, sh, o.Board); err != nil {
			return nil, err
		}
		// busybox picks its applet from argv[0]: run as /bin/sh, it is sh.
		a.file("/bin/sh", 0o755, sh)
		res.ShellSHA256 = sha256Hex(sh)
	}
	if err := addZramMkfs(a, o); err != nil { // zram.go
		return nil, err
	}
	if o.SandboxAppArmor {
		policy, err := sandbox.CompileProfile(sandbox.DefaultProfile)
		if err != nil {
			return nil, err
		}
		a.file(sandbox.CompiledPolicyPath, 0o644, policy)
	}

	modDir := "/lib/modules/" + tree.Version
	a.dir(modDir)
	info := BuildInfo{
		Board:           o.Board.Name,
		KernelVersion:   tree.Version,
		OfsrootVersion:  ofsrootVersion(o.Version),
		Compression:     o.Compression,
		SourceDateEpoch: o.SourceDateEpoch,
		InitSHA256:      sha256Hex(initData),
		ShellSHA256:     res.ShellSHA256,
		Modules:         []BuildModule{},
		Builtin:         plan.Builtin,
		WithoutModules:  res.Omitted,
	}
	var order []modload.Entry
	rootFS := rootFSOnly(mods)
	for _, m := range mods {
		data, err := kmod.ReadModule(m.File)
		if err != nil {
			return nil, err
		}
		if o.StripModules {
			if data, err = stripModule(data); err != nil {
				return nil, fmt.Errorf("%s: %w", m.File, err)
			}
		}
		p := path.Join(modDir, kmod.PlainName(m.Path))
		a.file(p, 0o644, data)
		order = append(order, modload.Entry{Path: p, Params: params[m.Name], RootFS: rootFS[m.Name]})
		info.Modules = append(info.Modules, BuildModule{Name: m.Name, Path: p, Params: params[m.Name], Reason: m.Reason})
		res.Modules = append(res.Modules, p)
		res.ModuleNames = append(res.ModuleNames, m.Name)
		res.ModuleBytes += int64(len(data))
	}
	var orderText bytes.Buffer
	if err := modload.FormatOrder(&orderText, order); err != nil {
		return nil, err
	}
	a.file(modload.OrderFile, 0o644, orderText.Bytes())
	infoJSON, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return nil, err
	}
	a.file(BuildInfoFile, 0o644, append(infoJSON, '\n'))

	res.Entries = len(a.records)
	if err := writeAtomic(o.Output, func(w io.Writer) error {
		cw, err := comp(w)
		if err != nil {
			return err
		}
		n, err := a.writeTo(cw)
		if err != nil {
			return err
		}
		res.UncompressedBytes = n
		return cw.Close()
	}, res); err != nil {
		return nil, fmt.Errorf("output %s: %w", o.Output, err)
	}
	return res, nil
}

// openKernel returns the package root of the kernel input: the folder
// itself, or a temporary folder with the module tree of a .deb.
func openKernel(kernel string, logf func(string, ...any)) (string, func(), error) {
	nop := func() {}
	fi, err := os.Stat(kernel)
	if err != nil {
		return "", nop, fmt.Errorf("kernel: %w", err)
	}
	if fi.IsDir() {
		return kernel, nop, nil
	}
	f, err := os.Open(kernel)
	if err != nil {
		return "", nop, fmt.Errorf("kernel: %w", err)
	}
	magic := make([]byte, 8)
	_, err = io.ReadFull(f, magic)
	f.Close()
	if err != nil || string(magic) != "!<arch>\n" {
		return "", nop, fmt.Errorf("kernel %s is neither a folder nor a Debian package (.deb)", kernel)
	}
	tmp, err := os.MkdirTemp("", "ofsroot-kernel-")
	if err != nil {
		return "", nop, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	logf("unpacking the module tree of %s", kernel)
	keep := func(name string) bool {
		for _, d := range kmod.ModulesDirs {
			if strings.HasPrefix(name, d+"/") {
				return true
			}
		}
		return false
	}
	if err := debpkg.ExtractFiltered(kernel, tmp, keep); err != nil {
		cleanup()
		return "", nop, fmt.Errorf("kernel: %w", err)
	}
	return tmp, cleanup, nil
}

// leaveOut drops the modules named in without from mods, recording them
// in res.Omitted and warning about kept modules that need them.
func leaveOut(mods []kmod.Module, without []string, boardName string, res *Result) ([]kmod.Module, error) {
	drop := map[string]bool{}
	for _, w := range without {
		n := kmod.NormalizeName(strings.TrimSpace(w))
		if !slicesContainsModule(mods, n) {
			var names []string
			for _, m := range mods {
				names = append(names, m.Name)
			}
			return nil, fmt.Errorf("cannot leave out module %q: it is not among the modules for board %s (%s)", w, boardName, strings.Join(names, " "))
		}
		drop[n] = true
	}
	var kept []kmod.Module
	for _, m := range mods {
		if drop[m.Name] {
			res.Omitted = append(res.Omitted, m.Name)
			continue
		}
		for _, d := range m.Info.Depends {
			if drop[d] {
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s needs %s, which is left out: loading %s will fail", m.Name, d, m.Name))
			}
		}
		kept = append(kept, m)
	}
	return kept, nil
}

func slicesContainsModule(mods []kmod.Module, name string) bool {
	name = kmod.NormalizeName(name)
	for _, m := range mods {
		if m.Name == name {
			return true
		}
	}
	return false
}

func sha256Hex(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

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
	root, err := FindModuleRoot(src)
	if err != nil {
		return nil, fmt.Errorf("no init for %s: %s does not exist (the ofsroot package ships one per architecture there), and %w", o.Board.Name, shipped, err)
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

// ofsrootVersion is the version build.json records: v if set, else the
// builder's own.
func ofsrootVersion(v string) string {
	if v != "" {
		return v
	}
	return version.Get()
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

// FindModuleRoot returns dir or its nearest parent holding the go.mod
// of ModulePath.
func FindModuleRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && goModModule(data) == ModulePath {
			return d, nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return "", fmt.Errorf("no go.mod of module %s in %s or its parents: run from the ofsroot source tree, or pass a prebuilt init with --init", ModulePath, abs)
}

// goModModule returns the module path a go.mod declares.
func goModModule(data []byte) string {
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "//")
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], "\"`")
		}
	}
	return ""
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

// archive collects the records of the cpio archive.
type archive struct {
	mtime   uint64
	records map[string]cpio.Record
}

func newArchive(epoch int64) *archive {
	return &archive{mtime: uint64(epoch), records: map[string]cpio.Record{}}
}

// add adds a record and the folders above it.
func (a *archive) add(r cpio.Record) {
	r.Name = cpio.Normalize(r.Name)
	for d := path.Dir(r.Name); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := a.records[d]; !ok {
			a.records[d] = cpio.Directory(d, 0o755)
		}
	}
	a.records[r.Name] = r
}

func (a *archive) dir(name string) { a.add(cpio.Directory(name, 0o755)) }

func (a *archive) file(name string, perm uint64, data []byte) {
	a.add(cpio.StaticRecord(data, cpio.Info{Name: name, Mode: cpio.S_IFREG | perm}))
}

// writeTo writes the records sorted by name (so every folder precedes
// what it holds), owned by root, stamped with the archive's time,
// numbered from 1, then the trailer. It returns the bytes written.
func (a *archive) writeTo(w io.Writer) (int64, error) {
	names := make([]string, 0, len(a.records))
	for n := range a.records {
		names = append(names, n)
	}
	sort.Strings(names)
	cw := &countingWriter{w: w}
	rw := cpio.Newc.Writer(cw)
	for i, n := range names {
		r := a.records[n]
		r.Ino = uint64(i + 1)
		r.UID, r.GID = 0, 0
		r.MTime = a.mtime
		r.Dev, r.Major, r.Minor = 0, 0, 0
		// The kernel treats regular files with more than one link as
		// hard links to match up: say 1.
		r.NLink = 1
		if r.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			r.NLink = 2
		}
		if err := rw.WriteRecord(r); err != nil {
			return cw.n, fmt.Errorf("archive entry %s: %w", n, err)
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeAtomic writes a file through fill into a temporary file beside
// name and renames it into place, recording its size and SHA-256 in res.
func writeAtomic(name string, fill func(io.Writer) error, res *Result) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(tmp, h)}
	if err := fill(cw); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return err
	}
	res.CompressedBytes = cw.n
	res.SHA256 = hex.EncodeToString(h.Sum(nil))
	return nil
}
