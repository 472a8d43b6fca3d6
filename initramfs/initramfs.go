// Package initramfs assembles the initramfs for a board: the static
// cgo-free ofsroot init for the board's architecture (shipped beside the
// program by the package, or cross-compiled from the source tree), the
// kernel modules the board lists with their dependencies in load order,
// and the /dev/console node, packed as a reproducible newc cpio archive
// compressed with gzip, xz or zstd (by default what the kernel unpacks
// best: see chooseCompression).
//
// The same inputs give the same bytes: entries are sorted, owned by
// root, stamped with SourceDateEpoch, numbered in order, and the
// compressors run single-threaded with fixed settings. A kernel given as
// a .deb and as the folder `dpkg -x` made of it give the same archive.
package initramfs

import (
	"github.com/ofsroot/ofsroot/pkg/sandbox"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/pkg/kernelpkg"
	"github.com/ofsroot/ofsroot/pkg/kmod"
	"github.com/ofsroot/ofsroot/pkg/kmod/compressed"
	"github.com/ofsroot/ofsroot/pkg/kmod/modload"
	"github.com/ofsroot/ofsroot/pkg/version"
)

// BuildInfoFile is where the archive records how it was built.
const BuildInfoFile = "/etc/ofsroot/build.json"

// The builder reads a distribution's compressed modules itself (the
// init leaves that to the kernel).
func init() { kmod.SetDecompressors(compressed.Decompressors) }

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
	// Compression is "gzip", "xz", "zstd" or "none"; "" picks, of those
	// the kernel's configuration (boot/config-VERSION, CONFIG_RD_*) says
	// it unpacks, zstd on amd64 boards and gzip on the others (then the
	// other one, then xz); without a configuration, gzip. A compression
	// the configuration says the kernel cannot unpack is refused.
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
	// SourceDir is where the search for the ofsroot source tree
	// (sourcetree.Find) starts when InitBinary is empty; default: the
	// working directory.
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
	// Zram is true when the archive carries what ofs-upper=zram needs
	// (Options.Zram): the modules and the mke2fs.
	Zram bool `json:"zram,omitempty"`
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
// Side effects: opens a .deb kernel with kernelpkg.Open (unpacked once
// into its cache, reused by later builds); without InitBinary and without a shipped init in
// InitDir, runs `go build` on the source tree (see SourceDir) into a
// temporary file; writes o.Output through a
// temporary file in the same folder, renamed into place at the end.
func Build(o Options) (*Result, error) {
	_, ok := compressors[o.Compression]
	switch {
	case o.Compression != "" && !ok:
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

	root, cleanup, err := kernelpkg.Open(o.Kernel, o.Log)
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
	// The compression: what the kernel's configuration says it unpacks
	// (compress.go).
	cfg, cfgErr := kernelpkg.ReadConfig(root, tree.Version)
	asked := o.Compression
	if o.Compression, err = chooseCompression(asked, o.Board.GOARCH, tree.Version, cfg, cfgErr); err != nil {
		return nil, err
	}
	if asked == "" {
		o.Log("compression: %s (the default for kernel %s)", o.Compression, tree.Version)
	}
	comp := compressors[o.Compression]
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
		Zram:            o.Zram != "",
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

// ofsrootVersion is the version build.json records: v if set, else the
// builder's own.
func ofsrootVersion(v string) string {
	if v != "" {
		return v
	}
	return version.Get()
}
