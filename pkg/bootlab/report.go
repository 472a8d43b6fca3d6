package bootlab

import (
	"github.com/ofsroot/ofsroot/pkg/mountfs"

	"github.com/ofsroot/ofsroot/pkg/units"

	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var initStartLine = regexp.MustCompile(`ofsroot: start t=([0-9]+(?:\.[0-9]+)?)`)

// InitStart returns the init's start time (CLOCK_MONOTONIC seconds) from
// its "ofsroot: start t=SECONDS" console line.
func InitStart(console string) (float64, bool) {
	m := initStartLine.FindStringSubmatch(console)
	if m == nil {
		return 0, false
	}
	t, err := strconv.ParseFloat(m[1], 64)
	return t, err == nil
}

// Timing is where the time of one boot went, in seconds of the guest's
// monotonic clock.
type Timing struct {
	InitStart float64 // the init's first instruction
	Handover  float64 // just before exec of the real init; 0 if unknown
	Probe     float64 // the real init's (probe's) start
	// Steps are the init's steps, in order, as the status has them.
	Steps []StepTime
}

// StepTime is one init step's duration.
type StepTime struct {
	Name    string
	Seconds float64
}

// Total is the init's whole share: its start to the real init's start.
func (t Timing) Total() float64 { return t.Probe - t.InitStart }

// TimingOf takes the times out of a run: the start from the status
// record (or the console line when there is none), the probe's time, and
// the steps.
func TimingOf(r *Run) (Timing, error) {
	if r.Report == nil {
		return Timing{}, fmt.Errorf("no probe report: %v", r.ReportErr)
	}
	t := Timing{Probe: r.Report.T}
	if st := r.Report.Status; st != nil {
		t.InitStart, t.Handover = st.StartedAt, st.HandoverAt
		for _, s := range st.Steps {
			t.Steps = append(t.Steps, StepTime{s.Name, s.Seconds})
		}
	}
	if t.InitStart == 0 {
		var ok bool
		if t.InitStart, ok = InitStart(r.Console.Text); !ok {
			return t, fmt.Errorf("neither a status record nor an \"ofsroot: start t=\" line")
		}
	}
	if t.Probe < t.InitStart {
		return t, fmt.Errorf("probe started at %.3f s, before the init (%.3f s)", t.Probe, t.InitStart)
	}
	return t, nil
}

// Median returns the median of xs (0 for none).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// MinMax returns the smallest and largest of xs.
func MinMax(xs []float64) (lo, hi float64) {
	for i, x := range xs {
		if i == 0 || x < lo {
			lo = x
		}
		if i == 0 || x > hi {
			hi = x
		}
	}
	return lo, hi
}

// Summary describes a probe run for people: the mode, the layers, the
// RAM layer's size, where a write went, and whether the image changed.
func (r *Run) Summary() string {
	var b strings.Builder
	line := func(k, f string, a ...any) { fmt.Fprintf(&b, "  %-14s %s\n", k, fmt.Sprintf(f, a...)) }
	rep := r.Report
	if rep == nil {
		fmt.Fprintf(&b, "  the probe did not report: %v\n", r.ReportErr)
	} else {
		if st := rep.Status; st != nil {
			mode := string(st.Mode)
			if st.Requested != "" {
				mode += " (overlayfs=" + st.Requested + ")"
			}
			line("mode", "%s", mode)
			for _, reason := range st.Reasons {
				line("degraded", "%s", reason)
			}
		} else {
			line("mode", "unknown: no status record (%s)", rep.StatusError)
		}
		if m, ok := rep.MountAt("/"); ok {
			line("/", "%s %s (%s)", m.FSType, m.Source, rwOf(m))
		}
		if m, ok := rep.MountAt("/mnt/root-RO"); ok {
			line("lower layer", "%s %s at /mnt/root-RO (%s)", m.FSType, m.Source, rwOf(m))
		}
		if m, ok := rep.MountAt("/mnt/root-RW"); ok {
			size := "size unknown"
			if rep.RW != nil {
				size = units.Bytes(rep.RW.Bytes())
				if rep.MemTotal > 0 {
					size += fmt.Sprintf(" = %.0f%% of %s RAM", 100*float64(rep.RW.Bytes())/float64(rep.MemTotal), units.Bytes(rep.MemTotal))
				}
			}
			line("upper layer", "%s %s at /mnt/root-RW, %s", m.FSType, m.Source, size)
		}
		w := "write to /: " + rep.WriteRoot
		if rep.InUpper != "" {
			w += "; in upper: " + rep.InUpper + "; in lower: " + rep.InLower
		}
		line("writes", "%s", w)
		line("", "write under /mnt/root-RO: %s", rep.WriteRO)
		if t, err := TimingOf(r); err == nil {
			line("timing", "init started at %.2f s, real init at %.2f s: %.2f s in the init", t.InitStart, t.Probe, t.Total())
		}
	}
	switch {
	case r.Image == "":
	case r.ImageUnchanged():
		line("image", "unchanged (sha256 %.16s…)", r.ImageAfter)
	default:
		line("image", "CHANGED: sha256 %.16s… before, %.16s… after", r.ImageBefore, r.ImageAfter)
	}
	return b.String()
}

func rwOf(m mountfs.MountInfo) string {
	if m.ReadOnly() {
		return "read-only"
	}
	return "read-write"
}
