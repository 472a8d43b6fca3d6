package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/initramfs"
	"github.com/ofsroot/ofsroot/pkg/bootbench"
	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/cli"
)

func init() {
	program.Commands["bench"] = cli.Command{
		Summary: "time the initramfs stage (Run /init to the real init) against its peers in QEMU (in the source tree, with Go)",
		Run:     runBench,
	}
}

// extraFlag collects --extra NAME=INITRAMFS[:WORDS] values.
type extraFlag []string

func (e *extraFlag) String() string     { return strings.Join(*e, " ") }
func (e *extraFlag) Set(v string) error { *e = append(*e, v); return nil }

// runBench boots, per board, ofsroot's initramfs, a kernel-only floor
// and (with --peers, on amd64) Debian's initramfs-tools + overlayroot,
// interleaved, on one marker root, and prints the stage times. Timings
// are guest clock under TCG: compare them with each other, within one
// run. No pass or fail.
func runBench(args []string, stdout, stderr io.Writer) error {
	fs := program.FlagSet("bench", "[--boards a,b] [--boots N] [--peers] [--initcall-debug] [--icount] [--cpu MODEL] [--svg FILE] [--extra NAME=INITRAMFS]", stderr)
	boards := fs.String("boards", "qemu-x86_64,sabrelite", "comma-separated boards")
	boots := fs.Int("boots", 5, "boots per variant (interleaved)")
	peers := fs.Bool("peers", false, "also build and boot Debian's initramfs-tools + overlayroot, MODULES=most and dep (amd64 boards; a debootstrap chroot cached in the cache folder)")
	initcall := fs.Bool("initcall-debug", false, "boot with initcall_debug to split module time into the kernel's init/probe and the loading (slows every variant)")
	svg := fs.String("svg", "", "write the timeline of the median boots to this SVG file")
	compression := fs.String("compression", "", "ofsroot's initramfs compression (default: the builder's)")
	variants := fs.String("variants", "", "more builds of ofsroot to boot, comma-separated: strip (--strip-modules), async (async_probe=1 for every module), gzip, xz, zstd (that compression), naive (the same modules under a naive Go /init: load them all, mount, overlay, switch, exec; the yardstick)")
	var extra extraFlag
	fs.Var(&extra, "extra", "another initramfs to boot, NAME=FILE (e.g. an older ofsroot build); repeatable; it gets ofsroot's command line")
	keep := fs.Bool("keep", false, "keep the work folder (console logs)")
	cpu := fs.String("cpu", "", "QEMU CPU model for every boot (-cpu), e.g. max on qemu-x86_64: TCG then offers SSSE3 and AVX2, as a real PC has (the default model has neither)")
	icount := fs.Bool("icount", false, "time by QEMU's instruction clock (-icount shift=0,sleep=off: 1 ns per guest instruction) instead of the host's: figures that stretch far less with the host's load, without TCG's translation cost; see the README")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *boots < 1 {
		return fmt.Errorf("%w: want --boots >= 1 and no arguments", errUsage)
	}
	var list []board.Board
	for _, n := range strings.Split(*boards, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		b, err := board.Lookup(n)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if b.QEMU.Unsupported != "" {
			return fmt.Errorf("%w: QEMU cannot boot %s: %s (boards it can boot: %s)", errUsage, b.Name, b.QEMU.Unsupported, strings.Join(board.Emulated(), ", "))
		}
		list = append(list, b)
	}
	var extras []bootbench.Variant
	for _, e := range extra {
		name, file, ok := strings.Cut(e, "=")
		if !ok || name == "" || file == "" {
			return fmt.Errorf("%w: --extra %q: want NAME=FILE", errUsage, e)
		}
		st, err := os.Stat(file)
		if err != nil {
			return fmt.Errorf("--extra %s: %w", name, err)
		}
		unpacked, err := bootbench.UnpackedSize(file)
		if err != nil {
			return fmt.Errorf("--extra %s: %w", name, err)
		}
		extras = append(extras, bootbench.Variant{Name: name, Initrd: file, Compressed: st.Size(), Unpacked: unpacked})
	}
	cache, work, done, err := labFolders("bench", *keep, stderr)
	if err != nil {
		return err
	}
	defer done()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	common := []string{"quiet"}
	if *initcall {
		common = append(common, "initcall_debug")
	}
	var rows []bootbench.Row
	load0 := bootbench.LoadAvg()
	clock := "the guest's clock, which follows the host's"
	var qemuArgs []string
	if *icount {
		clock = "the instruction clock (" + strings.Join(bootbench.ICount, " ") + ": 1 ns per guest instruction, idle time skipped)"
		qemuArgs = bootbench.ICount
	}
	if *cpu != "" {
		clock += ", -cpu " + *cpu
		qemuArgs = append(append([]string{}, qemuArgs...), "-cpu", *cpu)
	}
	fmt.Fprintf(stdout, "ofsroot bench: %d interleaved boots per variant, QEMU TCG -smp 1, kernel command line %q + root= + the variant's words; stage = kernel's \"Run /init\" → the real init's first kmsg record (a static marker), on %s\n",
		*boots, strings.Join(common, " "), clock)
	for _, b := range list {
		bw := filepath.Join(work, b.Name)
		bench, err := prepareBench(b, cache, bw, *peers, *compression, *variants, extras, stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", b.Name, err)
		}
		bench.Common = common
		bench.QEMUArgs = qemuArgs
		res, err := bench.Run(ctx, *boots, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\n%s (kernel %s), host load average %s:\n", b.Name, bench.Kernel.Version, bootbench.LoadAvg())
		bootbench.WriteTable(stdout, res, "ofsroot")
		bootbench.WriteSpans(stdout, res)
		for _, r := range res {
			if len(r.Boots) > 0 {
				rows = append(rows, bootbench.Row{Name: b.Name + ": " + r.Variant.Name, Spans: bootbench.MedianSpans(r.Boots)})
			}
		}
	}
	fmt.Fprintf(stdout, "\nhost load average (1, 5, 15 min): %s at the start, %s at the end\n", load0, bootbench.LoadAvg())
	if *svg != "" {
		how := "QEMU TCG"
		if *icount {
			how = "QEMU TCG, instruction clock"
		}
		title := fmt.Sprintf("Run /init → real init, median of %d boots (%s, %s)", *boots, how, time.Now().UTC().Format("2006-01-02"))
		if err := os.WriteFile(*svg, []byte(bootbench.Plot(title, rows)), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "timeline: %s\n", *svg)
	}
	return nil
}

// prepareBench builds the marker root and the variants for board b.
func prepareBench(b board.Board, cache, work string, peers bool, compression, variants string, extras []bootbench.Variant, progress io.Writer) (*bootbench.Bench, error) {
	fmt.Fprintf(progress, "bench: preparing %s\n", b.Name)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	k, err := bootlab.FetchKernel(cache, b)
	if err != nil {
		return nil, err
	}
	marker := filepath.Join(work, "marker")
	if err := bootbench.BuildMarker(b, marker); err != nil {
		return nil, err
	}
	img, root, err := bootbench.MarkerRoot(b, marker, work)
	if err != nil {
		return nil, err
	}
	bench := &bootbench.Bench{Board: b, Kernel: k, Image: img, Root: root, Work: work, Timeout: bootlab.DefaultTimeout(b)}
	ofsArgs := []string{"overlayfs=yes", "ofs-size=20"}

	out := filepath.Join(work, "ofsroot.cpio")
	res, err := initramfs.Build(initramfs.Options{Board: b, Kernel: k.Dir, Output: out, Compression: compression, SourceDateEpoch: bootlab.SourceDateEpoch})
	if err != nil {
		return nil, fmt.Errorf("ofsroot's initramfs: %w", err)
	}
	bench.Variants = append(bench.Variants, bootbench.Variant{Name: "ofsroot", Initrd: out, Append: ofsArgs, Compressed: res.CompressedBytes, Unpacked: res.UncompressedBytes})
	for _, v := range strings.Split(variants, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		o := initramfs.Options{Board: b, Kernel: k.Dir, Output: filepath.Join(work, "ofsroot-"+v+".cpio"), Compression: compression, SourceDateEpoch: bootlab.SourceDateEpoch}
		switch v {
		case "strip":
			o.StripModules = true
		case "async":
			o.ModuleParams = map[string]string{}
			for _, m := range b.Modules {
				o.ModuleParams[m] = "async_probe=1"
			}
		case "gzip", "xz", "zstd":
			o.Compression = v
		case "naive":
			o.InitBinary = filepath.Join(work, "naive")
			if err := bootbench.BuildNaive(b, o.InitBinary); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%w: --variants %s: want strip, async, gzip, xz, zstd or naive", errUsage, v)
		}
		res, err := initramfs.Build(o)
		if err != nil {
			return nil, fmt.Errorf("ofsroot's initramfs (%s): %w", v, err)
		}
		name := "ofsroot " + v
		if v == "naive" {
			name = "a naive Go /init, the same modules"
		}
		bench.Variants = append(bench.Variants, bootbench.Variant{Name: name, Initrd: o.Output, Append: ofsArgs, Compressed: res.CompressedBytes, Unpacked: res.UncompressedBytes})
	}
	for _, e := range extras {
		e.Append = ofsArgs
		bench.Variants = append(bench.Variants, e)
	}
	if peers && b.DebianArch == "amd64" {
		chroot, err := bootbench.PeerChroot(cache, b.DebianArch)
		if err != nil {
			return nil, err
		}
		for _, m := range bootbench.PeerModules {
			p := filepath.Join(cache, "ofsbench", fmt.Sprintf("initramfs-tools-%s-%s.img", k.Version, m))
			if _, err := os.Stat(p); err != nil {
				fmt.Fprintf(progress, "bench: building Debian's initramfs, MODULES=%s\n", m)
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := bootbench.PeerInitramfs(chroot, k, m, p+".tmp"); err != nil {
					return nil, err
				}
				if err := os.Rename(p+".tmp", p); err != nil {
					return nil, err
				}
			}
			st, err := os.Stat(p)
			if err != nil {
				return nil, err
			}
			unpacked, _ := bootbench.UnpackedSize(p)
			bench.Variants = append(bench.Variants, bootbench.Variant{
				Name: "initramfs-tools + overlayroot, MODULES=" + m, Initrd: p,
				Append: []string{"ro", "overlayroot=tmpfs"}, Compressed: st.Size(), Unpacked: unpacked})
		}
	}
	floor := filepath.Join(work, "floor.cpio.gz")
	c, u, err := bootbench.FloorInitramfs(marker, floor)
	if err != nil {
		return nil, err
	}
	bench.Variants = append(bench.Variants, bootbench.Variant{Name: "kernel only (/init = the marker)", Initrd: floor, Compressed: c, Unpacked: u})
	return bench, nil
}
