package bootbench

import (
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/units"
)

// Stages returns the stage of every boot of r.
func (r *Result) Stages() []float64 {
	var xs []float64
	for _, b := range r.Boots {
		xs = append(xs, b.Stage())
	}
	return xs
}

// Typical returns the boot whose stage is the median's (the lower middle
// one for an even count), false if there is none.
func (r *Result) Typical() (Boot, bool) {
	if len(r.Boots) == 0 {
		return Boot{}, false
	}
	bs := append([]Boot(nil), r.Boots...)
	sort.SliceStable(bs, func(i, j int) bool { return bs[i].Stage() < bs[j].Stage() })
	return bs[(len(bs)-1)/2], true
}

// WriteTable prints one board's table: per variant the initramfs sizes,
// the median stage, its range, and its ratio to the variant named ref.
func WriteTable(w io.Writer, results []*Result, ref string) {
	var refMed float64
	for _, r := range results {
		if r.Variant.Name == ref && len(r.Boots) > 0 {
			refMed = bootlab.Median(r.Stages())
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "variant\tinitramfs\tunpacked\tkernel unpack\tstage (median)\tmin–max\t× %s\tboots\t\n", ref)
	for _, r := range results {
		med, rng, ratio, unpack := "-", "-", "-", "-"
		var ups []float64
		for _, b := range r.Boots {
			if b.Unpack > 0 {
				ups = append(ups, b.Unpack)
			}
		}
		if len(ups) > 0 {
			unpack = fmt.Sprintf("%.3f s", bootlab.Median(ups))
		}
		if len(r.Boots) > 0 {
			m := bootlab.Median(r.Stages())
			lo, hi := bootlab.MinMax(r.Stages())
			med, rng = fmt.Sprintf("%.3f s", m), fmt.Sprintf("%.3f–%.3f", lo, hi)
			if refMed > 0 {
				ratio = fmt.Sprintf("%.2f", m/refMed)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t\n", r.Variant.Name,
			units.Bytes(uint64(r.Variant.Compressed)), units.Bytes(uint64(r.Variant.Unpacked)),
			unpack, med, rng, ratio, len(r.Boots), len(r.Boots)+len(r.Failures))
	}
	tw.Flush()
}

// WriteSpans prints, for each variant with more than one span, the
// median time of each span (by label, in first-seen order) and, when
// known, ofsroot's slowest modules and the initcall_debug split.
func WriteSpans(w io.Writer, results []*Result) {
	for _, r := range results {
		med := MedianSpans(r.Boots)
		if len(med) < 2 {
			continue
		}
		fmt.Fprintf(w, "\n%s: median seconds per step\n", r.Variant.Name)
		for _, s := range med {
			fmt.Fprintf(w, "  %7.3f  %s\n", s.End-s.Start, shorten(s.Label, 90))
		}
		mods := map[string][]float64{}
		var order []string
		for _, b := range r.Boots {
			for _, m := range b.Modules {
				if _, ok := mods[m.Name]; !ok {
					order = append(order, m.Name)
				}
				mods[m.Name] = append(mods[m.Name], m.Seconds)
			}
		}
		if len(order) > 0 {
			fmt.Fprintf(w, "  modules (median s):")
			for _, n := range order {
				fmt.Fprintf(w, " %s %.3f", n, bootlab.Median(mods[n]))
			}
			fmt.Fprintln(w)
		}
		var step, kern []float64
		for _, b := range r.Boots {
			if b.Initcalls != nil && b.ModuleStep > 0 {
				var sum float64
				for _, t := range b.Initcalls {
					sum += t
				}
				step, kern = append(step, b.ModuleStep), append(kern, sum)
			}
		}
		if len(step) > 0 {
			s, k := bootlab.Median(step), bootlab.Median(kern)
			fmt.Fprintf(w, "  initcall_debug: module step %.3f s = modules' init/probe %.3f s + loading (read, hash, relocate, BTF) and the loader %.3f s\n", s, k, s-k)
		}
	}
}

// MedianSpans returns one boot's worth of spans whose lengths are the
// medians over boots, by label, laid end to end from 0 in the order the
// labels first appear.
func MedianSpans(boots []Boot) []Span {
	lens := map[string][]float64{}
	var order []string
	for _, b := range boots {
		seen := map[string]float64{}
		for _, s := range b.Spans {
			if _, ok := seen[s.Label]; !ok && lens[s.Label] == nil {
				order = append(order, s.Label)
			}
			seen[s.Label] += s.End - s.Start
		}
		for l, d := range seen {
			lens[l] = append(lens[l], d)
		}
	}
	var out []Span
	at := 0.0
	for _, l := range order {
		d := bootlab.Median(lens[l])
		out = append(out, Span{l, at, at + d})
		at += d
	}
	return out
}

// Row is one line of the timeline: a variant's spans from 0.
type Row struct {
	Name  string
	Spans []Span
}

// palette is Tableau 20: twenty colours apart enough for a legend.
var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
	"#a0cbe8", "#ffbe7d", "#8cd17d", "#ff9d9a", "#86bcb6", "#f1ce63", "#d4a6c8", "#fabfd2", "#d7b5a6", "#79706e"}

// Plot draws the rows as an SVG timeline in the manner of
// systemd-analyze plot: a row per variant, a bar per step, the time axis
// in seconds from the kernel's "Run /init". Steps shorter than a pixel
// are drawn a pixel wide; labels of wide bars are written in them, the
// others are listed in the legend under their colour.
func Plot(title string, rows []Row) string {
	const (
		left, right, top, rowH, barH = 230.0, 20.0, 40.0, 34.0, 22.0
		width                        = 960.0
	)
	maxT := 0.0
	for _, r := range rows {
		for _, s := range r.Spans {
			maxT = math.Max(maxT, s.End)
		}
	}
	if maxT <= 0 {
		maxT = 1
	}
	scale := (width - left - right) / maxT
	// Colours by label, shared between rows.
	colour := map[string]string{}
	var labels []string
	for _, r := range rows {
		for _, s := range r.Spans {
			if _, ok := colour[s.Label]; !ok {
				colour[s.Label] = palette[len(labels)%len(palette)]
				labels = append(labels, s.Label)
			}
		}
	}
	legendTop := top + rowH*float64(len(rows)) + 40
	height := legendTop + 16*float64(len(labels)) + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14">%s</text>`+"\n", html.EscapeString(title))
	step := niceStep(maxT)
	axisBottom := top + rowH*float64(len(rows))
	for t := 0.0; t <= maxT+1e-9; t += step {
		x := left + t*scale
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#ddd"/>`, x, top-5, x, axisBottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#555">%s s</text>`+"\n", x, axisBottom+14, trimFloat(t))
	}
	for i, r := range rows {
		y := top + rowH*float64(i)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-8, y+barH/2+4, html.EscapeString(r.Name))
		end := 0.0
		for _, s := range r.Spans {
			x, w := left+s.Start*scale, math.Max((s.End-s.Start)*scale, 1)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.0f" width="%.1f" height="%.0f" fill="%s"><title>%s: %.3f s</title></rect>`+"\n",
				x, y, w, barH, colour[s.Label], html.EscapeString(s.Label), s.End-s.Start)
			end = math.Max(end, s.End)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#333">%.3f s</text>`+"\n", left+end*scale+4, y+barH/2+4, end)
	}
	for i, l := range labels {
		y := legendTop + 16*float64(i)
		fmt.Fprintf(&b, `<rect x="10" y="%.0f" width="12" height="12" fill="%s"/><text x="28" y="%.0f">%s</text>`+"\n",
			y-10, colour[l], y, html.EscapeString(shorten(l, 130)))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceStep picks a grid step of 1, 2 or 5 times a power of ten giving
// about eight lines.
func niceStep(maxT float64) float64 {
	raw := maxT / 8
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(t float64) string {
	s := fmt.Sprintf("%.3f", t)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
