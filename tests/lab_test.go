package tests

import (
	"github.com/ofsroot/ofsroot/internal/testenv"

	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/initramfs"
	"github.com/ofsroot/ofsroot/pkg/bootlab"
)

// maxBoots is how many QEMUs run at once: each TCG guest keeps one core
// busy, and CI has two.
const maxBoots = 2

var (
	runDir  string // everything this run builds and logs
	bootSem = make(chan struct{}, maxBoots)

	// kernelCache is where kernels are kept between runs.
	kernelCache = sync.OnceValues(bootlab.CacheDir)

	labsMu sync.Mutex
	labs   = map[string]*lab{}

	statsMu sync.Mutex
	stats   []bootStat
)

type bootStat struct {
	name string
	dur  time.Duration
}

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "ofsroot-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		runDir = dir
		start := time.Now()
		code := m.Run()
		printStats(time.Since(start))
		if code != 0 || os.Getenv("OFSROOT_KEEP") != "" {
			fmt.Fprintf(os.Stderr, "e2e: run folder kept: %s\n", runDir)
		} else {
			os.RemoveAll(runDir)
		}
		return code
	}()
	os.Exit(code)
}

func printStats(total time.Duration) {
	statsMu.Lock()
	defer statsMu.Unlock()
	if len(stats) == 0 {
		return
	}
	var sum time.Duration
	sort.Slice(stats, func(i, j int) bool { return stats[i].name < stats[j].name })
	for _, s := range stats {
		sum += s.dur
		if testing.Verbose() {
			fmt.Printf("e2e: %-60s %6.1fs\n", s.name, s.dur.Seconds())
		}
	}
	fmt.Printf("e2e: %d boots, %.0fs of QEMU, %.0fs wall for the whole package\n", len(stats), sum.Seconds(), total.Seconds())
}

// lab is one board's kernel, probe, root images and initramfs variants,
// built once per run on first use.
type lab struct {
	once  sync.Once
	err   error
	setup *bootlab.Setup

	mu      sync.Mutex
	initrds map[string]*initrd
}

type initrd struct {
	once   sync.Once
	path   string
	result *initramfs.Result
	err    error
}

// needHost fails the test when a host tool is missing: the suite is part
// of `make test`, which runs scripts/setup-host.sh first.
func needHost(t *testing.T, b board.Board) {
	t.Helper()
	testenv.SkipIfShort(t, "boots QEMU")
	for _, tool := range []string{b.QEMU.Binary, "apt-cache", "apt-get", "dpkg", "mkfs.ext4", "sfdisk", "debugfs", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run scripts/setup-host.sh (or go test -short to skip boot tests)", tool)
		}
	}
}

// getLab returns the prepared lab for a board, preparing it on first use.
func getLab(t *testing.T, name string) *lab {
	t.Helper()
	b, err := board.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	needHost(t, b)
	labsMu.Lock()
	l := labs[name]
	if l == nil {
		l = &lab{initrds: map[string]*initrd{}}
		labs[name] = l
	}
	labsMu.Unlock()
	l.once.Do(func() {
		cache, err := kernelCache()
		if err != nil {
			l.err = err
			return
		}
		start := time.Now()
		l.setup, l.err = bootlab.NewSetup(b, cache, filepath.Join(runDir, "lab", name))
		if l.err == nil {
			t.Logf("lab for %s ready in %.1fs: kernel %s", name, time.Since(start).Seconds(), l.setup.Kernel.Version)
		}
	})
	if l.err != nil {
		t.Fatalf("preparing %s: %v", name, l.err)
	}
	return l
}

// variant names an initramfs build: a compression and modules left out.
type variant struct {
	compression string // "" = the builder's default (zstd where the kernel unpacks it on amd64, else gzip)
	without     []string
	shell       bool // carry Debian's static busybox as /bin/sh
	apparmor    bool // carry the sandbox's compiled AppArmor profile
	zram        bool // carry the zram modules and busybox as /sbin/mke2fs (--zram)
}

func (v variant) key() string {
	return fmt.Sprintf("%s/%s/%v/%v/%v", v.compression, strings.Join(v.without, ","), v.shell, v.apparmor, v.zram)
}

// initrd builds (once) and returns the initramfs variant v.
func (l *lab) initrd(t *testing.T, v variant) (string, *initramfs.Result) {
	t.Helper()
	l.mu.Lock()
	ir := l.initrds[v.key()]
	if ir == nil {
		ir = &initrd{}
		l.initrds[v.key()] = ir
	}
	l.mu.Unlock()
	ir.once.Do(func() {
		start := time.Now()
		o := initramfs.Options{Compression: v.compression, WithoutModules: v.without, SandboxAppArmor: v.apparmor}
		if v.shell || v.zram {
			cache, err := kernelCache()
			var bb string
			if err == nil {
				bb, err = bootlab.FetchBusybox(cache, l.setup.Board)
			}
			if ir.err = err; err != nil {
				return
			}
			if v.shell {
				o.Shell = bb
			}
			if v.zram {
				o.Zram = bb
			}
		}
		ir.path, ir.result, ir.err = l.setup.Initramfs(o)
		if ir.err == nil {
			t.Logf("initramfs %s for %s: %d bytes (%d uncompressed), built in %.1fs", filepath.Base(ir.path), l.setup.Board.Name, ir.result.CompressedBytes, ir.result.UncompressedBytes, time.Since(start).Seconds())
		}
	})
	if ir.err != nil {
		t.Fatal(ir.err)
	}
	return ir.path, ir.result
}

// imageKind picks the root image a boot uses.
type imageKind int

const (
	defaultImage imageKind = iota // bootlab.Setup.DefaultRoot
	fsImage                       // the bare ext4 filesystem as the whole disk
	diskImage                     // the MBR disk, root in partition 1
)

// bootCase is one QEMU boot.
type bootCase struct {
	board   string
	variant variant
	image   imageKind
	// root is the root= value; "" means the default for the image.
	root  string
	words []string
	// noProbe: the boot is expected to stop before the real init.
	noProbe bool
	// replies are typed on the console as their prompts appear.
	replies []bootlab.Reply
}

// runBoot boots spec on s, at most maxBoots at a time, into a folder
// named after the test (unless spec.Dir says), and records how long QEMU
// ran. It fails the test if QEMU did not end by itself or the kernel
// panicked, and on any failure says where the console log is and shows
// its tail.
func runBoot(t *testing.T, s *bootlab.Setup, spec bootlab.RunSpec) *bootlab.Run {
	t.Helper()
	if spec.Dir == "" {
		spec.Dir = filepath.Join(runDir, "boots", strings.ReplaceAll(t.Name(), "/", "_"))
	}
	bootSem <- struct{}{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run, err := s.Run(ctx, spec)
	<-bootSem
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console log: %s", filepath.Join(spec.Dir, "console.log"))
			if run != nil && run.Console != nil {
				t.Logf("console tail:\n%s", tail(run.Console.Text, 60))
			}
		}
	})
	if run != nil && run.Console != nil {
		statsMu.Lock()
		stats = append(stats, bootStat{t.Name(), run.Console.Duration})
		statsMu.Unlock()
	}
	if err != nil || run == nil {
		t.Fatalf("boot %s %q: %v", s.Board.Name, spec.Append, err)
	}
	assertNot(t, run.Console, "Kernel panic", "kernel panic")
	return run
}

// boot runs c and returns the run. It fails the test if QEMU does not
// exit by itself, if the kernel panics, or (unless c.noProbe) if the probe
// did not report. On failure it prints where the console log is and the
// console's tail.
func boot(t *testing.T, c bootCase) *bootlab.Run {
	t.Helper()
	l := getLab(t, c.board)
	initrdPath, _ := l.initrd(t, c.variant)
	s := l.setup

	img, root := s.DefaultRoot()
	switch c.image {
	case fsImage:
		img, root = s.FSImage, "root="+s.Board.QEMU.DiskDevice
	case diskImage:
		img, root = s.DiskImage, "root="+s.Board.QEMU.PartitionDevice(bootlab.RootPartition)
	}
	if c.root != "" {
		root = "root=" + c.root
	}
	words := append([]string{root}, c.words...)
	run := runBoot(t, s, bootlab.RunSpec{Initrd: initrdPath, Image: img, Append: words, Replies: c.replies})
	assertNot(t, run.Console, "the init panicked", "a panic recovered in the init")
	assertNot(t, run.Console, "freeing the initramfs", "a failure to free the initramfs")
	if c.noProbe {
		if run.Report != nil {
			t.Errorf("the probe ran, but this boot should have stopped before the real init")
		}
		return run
	}
	if run.ReportErr != nil {
		t.Fatalf("probe report: %v", run.ReportErr)
	}
	r := run.Report
	if r.PID != 1 {
		t.Errorf("probe ran as PID %d, want 1 (the init must exec it, not fork)", r.PID)
	}
	for _, p := range r.Problems {
		t.Errorf("probe: %s", p)
	}
	assertHas(t, run.Console, "ofsroot: start t=")
	assertHas(t, run.Console, "ofsroot: switching to /sbin/init")
	return run
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func assertHas(t *testing.T, c *bootlab.Console, s string) {
	t.Helper()
	if !c.Contains(s) {
		t.Errorf("console lacks %q", s)
	}
}

func assertNot(t *testing.T, c *bootlab.Console, s, what string) {
	t.Helper()
	if lines := c.Lines(s); len(lines) > 0 {
		t.Errorf("console has %s: %q", what, lines)
	}
}

// assertLine checks that one console line has every one of parts.
func assertLine(t *testing.T, c *bootlab.Console, parts ...string) string {
	t.Helper()
	for _, l := range c.Lines(parts[0]) {
		ok := true
		for _, p := range parts[1:] {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return l
		}
	}
	t.Errorf("console has no line with all of %q; lines with %q: %q", parts, parts[0], c.Lines(parts[0]))
	return ""
}
