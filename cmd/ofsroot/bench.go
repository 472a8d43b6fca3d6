package main

import (
	"github.com/ofsroot/ofsroot/pkg/units"

	"github.com/ofsroot/ofsroot/pkg/cli"

	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/initramfs"
	"github.com/ofsroot/ofsroot/pkg/bootlab"
)

func init() {
	program.Commands["bench"] = cli.Command{
		Summary: "measure the initramfs size and the init's boot time per board in QEMU",
		Run:     runBench,
	}
}

// benchResult is one board's measurements.
type benchResult struct {
	board        string
	compressed   int64
	uncompressed int64
	totals       []float64            // init start to real init start, per boot
	kernel       []float64            // kernel start to init start
	steps        map[string][]float64 // per step name
	stepOrder    []string
	failures     int
}

// runBench boots each board N times with the protected root and reports
// the initramfs size and the time from the init's first instruction to
// the real init's, with the split over the init's steps. Timings are
// guest clock under TCG emulation: compare them with each other, not with
// hardware. No pass or fail.
func runBench(args []string, stdout, stderr io.Writer) error {
	fs := program.FlagSet("bench", "[--boards a,b] [--boots N]", stderr)
	boards := fs.String("boards", strings.Join(board.Emulated(), ","), "comma-separated boards")
	boots := fs.Int("boots", 5, "boots per board")
	keep := fs.Bool("keep", false, "keep the work folder (console logs)")
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
	cache, work, done, err := labFolders("bench", *keep, stderr)
	if err != nil {
		return err
	}
	defer done()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var results []*benchResult
	for _, b := range list {
		r, err := benchBoard(ctx, b, cache, filepath.Join(work, b.Name), *boots, stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", b.Name, err)
		}
		results = append(results, r)
	}
	printBench(stdout, results, *boots)
	return nil
}

func benchBoard(ctx context.Context, b board.Board, cache, work string, boots int, progress io.Writer) (*benchResult, error) {
	fmt.Fprintf(progress, "bench: preparing %s\n", b.Name)
	s, err := bootlab.NewSetup(b, cache, work)
	if err != nil {
		return nil, err
	}
	initrd, res, err := s.Initramfs(initramfs.Options{})
	if err != nil {
		return nil, err
	}
	r := &benchResult{board: b.Name, compressed: res.CompressedBytes, uncompressed: res.UncompressedBytes, steps: map[string][]float64{}}
	img, root := s.DefaultRoot()
	for i := 1; i <= boots; i++ {
		run, err := s.Run(ctx, bootlab.RunSpec{
			Initrd: initrd,
			Image:  img,
			Append: []string{root, "overlayfs=yes", "ofs-size=20"},
			Dir:    filepath.Join(work, fmt.Sprintf("boot-%d", i)),
		})
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			r.failures++
			fmt.Fprintf(progress, "bench: %s boot %d/%d failed: %v\n", b.Name, i, boots, err)
			continue
		}
		t, err := bootlab.TimingOf(run)
		if err != nil {
			r.failures++
			fmt.Fprintf(progress, "bench: %s boot %d/%d: %v (console in %s)\n", b.Name, i, boots, err, run.Console.Log)
			continue
		}
		r.totals = append(r.totals, t.Total())
		r.kernel = append(r.kernel, t.InitStart)
		for _, st := range t.Steps {
			if _, seen := r.steps[st.Name]; !seen {
				r.stepOrder = append(r.stepOrder, st.Name)
			}
			r.steps[st.Name] = append(r.steps[st.Name], st.Seconds)
		}
		if t.Handover > 0 {
			const name = "(exec of the real init: hand-over to probe start)"
			if _, seen := r.steps[name]; !seen {
				r.stepOrder = append(r.stepOrder, name)
			}
			r.steps[name] = append(r.steps[name], t.Probe-t.Handover)
		}
		fmt.Fprintf(progress, "bench: %s boot %d/%d: %.3f s from init start to real init (QEMU %.1f s wall)\n",
			b.Name, i, boots, t.Total(), run.Console.Duration.Seconds())
	}
	return r, nil
}

func printBench(w io.Writer, results []*benchResult, boots int) {
	fmt.Fprintf(w, "\nofsroot bench: %d boots per board, overlayfs=yes ofs-size=20, QEMU TCG (guest monotonic clock)\n\n", boots)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "board\tinitramfs\tunpacked\tkernel→init\tinit→real init (median)\tmin–max\tok\t")
	for _, r := range results {
		med, lo, hi := "-", "-", "-"
		if len(r.totals) > 0 {
			l, h := bootlab.MinMax(r.totals)
			med, lo, hi = secs(bootlab.Median(r.totals)), secs(l), secs(h)
		}
		kern := "-"
		if len(r.kernel) > 0 {
			kern = secs(bootlab.Median(r.kernel))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s–%s\t%d/%d\t\n", r.board,
			units.Bytes(uint64(r.compressed)), units.Bytes(uint64(r.uncompressed)),
			kern, med, lo, hi, len(r.totals), len(r.totals)+r.failures)
	}
	tw.Flush()
	for _, r := range results {
		if len(r.stepOrder) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s: median seconds per init step\n", r.board)
		var sum float64
		for _, name := range r.stepOrder {
			m := bootlab.Median(r.steps[name])
			sum += m
			fmt.Fprintf(w, "  %8.3f  %s\n", m, shorten(name, 100))
		}
		if len(r.totals) > 0 {
			fmt.Fprintf(w, "  %8.3f  (not in any step: start-up, logging, status file)\n", bootlab.Median(r.totals)-sum)
		}
	}
}

func secs(x float64) string { return fmt.Sprintf("%.3f s", x) }

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
