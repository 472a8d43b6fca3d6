package flash

import (
	"github.com/ofsroot/ofsroot/pkg/units"

	"fmt"
	"io"
	"strings"
	"time"
)

// Progress reports bytes done. On a terminal it redraws one bar line
// (bytes, rate, time left); otherwise it prints a plain line at every
// tenth of the way (every 256 MiB when the total is unknown). A nil
// *Progress reports nothing.
type Progress struct {
	W        io.Writer
	Terminal bool
	// Now is the clock (time.Now when nil); tests set it.
	Now func() time.Time

	label      string
	total      int64
	done       int64
	start      time.Time
	lastDraw   time.Time
	lastStep   int64
	terminalOn bool
}

func (p *Progress) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Start begins a phase of total bytes (0: unknown).
func (p *Progress) Start(label string, total int64) {
	if p == nil {
		return
	}
	p.label, p.total, p.done, p.lastStep = label, total, 0, 0
	p.start = p.now()
	p.lastDraw = time.Time{}
	if !p.Terminal {
		if total > 0 {
			fmt.Fprintf(p.W, "%s: %s\n", label, units.Bytes(total))
		} else {
			fmt.Fprintf(p.W, "%s\n", label)
		}
	}
}

// Write counts len(b) bytes done.
func (p *Progress) Write(b []byte) (int, error) {
	if p == nil {
		return len(b), nil
	}
	p.done += int64(len(b))
	now := p.now()
	if p.Terminal {
		if now.Sub(p.lastDraw) >= 200*time.Millisecond {
			p.lastDraw = now
			fmt.Fprintf(p.W, "\r%s\x1b[K", p.Line(now))
			p.terminalOn = true
		}
		return len(b), nil
	}
	var step int64
	if p.total > 0 {
		step = p.done * 10 / p.total
	} else {
		step = p.done / (256 << 20)
	}
	if step > p.lastStep {
		p.lastStep = step
		fmt.Fprintln(p.W, p.Line(now))
	}
	return len(b), nil
}

// Done ends the phase with a final line.
func (p *Progress) Done() {
	if p == nil {
		return
	}
	now := p.now()
	if p.Terminal {
		fmt.Fprintf(p.W, "\r%s\x1b[K\n", p.Line(now))
		p.terminalOn = false
		return
	}
	if p.total <= 0 || p.lastStep < 10 {
		fmt.Fprintln(p.W, p.Line(now))
	}
}

// Note prints a line of its own.
func (p *Progress) Note(s string) {
	if p == nil {
		return
	}
	fmt.Fprintln(p.W, s)
}

// Line is the progress line at time now: label, bar (on a terminal),
// percentage, bytes, rate, time left.
func (p *Progress) Line(now time.Time) string {
	el := now.Sub(p.start).Seconds()
	var rate float64
	if el > 0 {
		rate = float64(p.done) / el
	}
	var b strings.Builder
	b.WriteString(p.label)
	if p.total > 0 {
		frac := float64(p.done) / float64(p.total)
		if frac > 1 {
			frac = 1
		}
		if p.Terminal {
			const width = 30
			n := int(frac * width)
			fmt.Fprintf(&b, " [%s%s]", strings.Repeat("#", n), strings.Repeat(" ", width-n))
		} else {
			b.WriteString(":")
		}
		fmt.Fprintf(&b, " %3d%% %s of %s", int(frac*100), units.Bytes(p.done), units.Bytes(p.total))
	} else {
		fmt.Fprintf(&b, ": %s", units.Bytes(p.done))
	}
	if rate > 0 {
		fmt.Fprintf(&b, ", %s/s", units.Bytes(int64(rate)))
		if p.total > 0 && p.done < p.total {
			fmt.Fprintf(&b, ", %s left", Duration(float64(p.total-p.done)/rate))
		} else {
			fmt.Fprintf(&b, ", %s", Duration(el))
		}
	}
	return b.String()
}

// Duration formats seconds as M:SS or H:MM:SS.
func Duration(sec float64) string {
	s := int64(sec + 0.5)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
