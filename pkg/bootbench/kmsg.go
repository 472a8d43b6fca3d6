package bootbench

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
)

// Console line prefixes the marker prints.
const (
	kmsgPrefix   = "ofsbench-kmsg: "
	statusPrefix = "ofsbench-status: "
	// EndLine is the marker's last line: the run is over once it shows.
	EndLine = "ofsbench: end"
	// Stamp is the marker's first kernel log record.
	Stamp = "ofsbench: marker"
)

// Record is one kernel log record as /dev/kmsg gives it.
type Record struct {
	Level int     // syslog priority (facility bits removed)
	Seq   uint64  // sequence number
	T     float64 // seconds on the kernel's clock
	Msg   string
}

// ParseRecord parses one /dev/kmsg record: "PRIO,SEQ,USEC,FLAGS;MESSAGE".
func ParseRecord(s string) (Record, error) {
	head, msg, ok := strings.Cut(s, ";")
	if !ok {
		return Record{}, fmt.Errorf("kmsg record %q: no ';'", s)
	}
	f := strings.Split(head, ",")
	if len(f) < 3 {
		return Record{}, fmt.Errorf("kmsg record %q: want PRIO,SEQ,USEC", s)
	}
	prio, err1 := strconv.Atoi(f[0])
	seq, err2 := strconv.ParseUint(f[1], 10, 64)
	usec, err3 := strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || prio < 0 {
		return Record{}, fmt.Errorf("kmsg record %q: bad number", s)
	}
	return Record{Level: prio & 7, Seq: seq, T: float64(usec) / 1e6, Msg: msg}, nil
}

// Console is what the marker printed in one boot.
type Console struct {
	Records []Record
	// Status is ofsroot's status record, nil for other initramfs.
	Status *bootstatus.Status
	// Complete says the marker's end line was seen.
	Complete bool
}

// ParseConsole picks the marker's lines out of a console log. Lines
// that are not the marker's (the kernel's, the serial noise) are
// skipped; a malformed marker line is an error.
func ParseConsole(text string) (*Console, error) {
	c := &Console{}
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r", ""), "\n") {
		switch {
		case strings.HasPrefix(line, kmsgPrefix):
			r, err := ParseRecord(line[len(kmsgPrefix):])
			if err != nil {
				return c, err
			}
			c.Records = append(c.Records, r)
		case strings.HasPrefix(line, statusPrefix):
			var st bootstatus.Status
			if err := json.Unmarshal([]byte(line[len(statusPrefix):]), &st); err != nil {
				return c, fmt.Errorf("ofsroot status record: %w", err)
			}
			c.Status = &st
		case strings.TrimSpace(line) == EndLine:
			c.Complete = true
		}
	}
	return c, nil
}

// Span is one bar of the timeline, in seconds from the kernel's start.
type Span struct {
	Label      string
	Start, End float64
}

// Boot is one measured boot.
type Boot struct {
	RunInit float64 // the kernel's "Run /init" record
	Marker  float64 // the marker's stamp
	Spans   []Span  // from RunInit to Marker, in order
	// Modules are ofsroot's per-module load times, by name, when known.
	Modules []bootstatus.Module
	// Initcalls are module init functions' times (initcall_debug), in
	// seconds, by module name.
	Initcalls map[string]float64
	// ModuleStep is the time of ofsroot's module step, 0 if none.
	ModuleStep float64
	// Unpack is the kernel's time to unpack the initramfs ("Trying to
	// unpack rootfs image" to "Freeing initrd memory"), 0 if unseen.
	Unpack float64
}

// Stage is the initramfs's share: "Run /init" to the real init.
func (b Boot) Stage() float64 { return b.Marker - b.RunInit }

var (
	runInit     = regexp.MustCompile(`^Run (\S+) as init process`)
	ofsStart    = regexp.MustCompile(`^ofsroot: start t=([0-9.]+)`)
	rootMounted = regexp.MustCompile(`^EXT4-fs \([^)]*\): mounted filesystem`)
	// initcall_debug: "initcall init_once+0x0/0x10 [mod] returned 0 after 12 usecs"
	initcallDone = regexp.MustCompile(`^initcall \S+ \[(\S+)\] returned -?\d+ after (\d+) usecs`)
)

// Analyze finds the stage and its spans in one boot's console.
func Analyze(c *Console) (Boot, error) {
	var b Boot
	var haveRun, haveMark bool
	unpackFrom := -1.0
	for _, r := range c.Records {
		switch {
		case strings.HasPrefix(r.Msg, "Trying to unpack rootfs image as initramfs"):
			unpackFrom = r.T
		case strings.HasPrefix(r.Msg, "Freeing initrd memory") && unpackFrom >= 0:
			b.Unpack = r.T - unpackFrom
		}
		if m := runInit.FindStringSubmatch(r.Msg); m != nil && !haveRun {
			b.RunInit, haveRun = r.T, true
		}
		if r.Msg == Stamp && !haveMark {
			b.Marker, haveMark = r.T, true
		}
		if m := initcallDone.FindStringSubmatch(r.Msg); m != nil {
			us, _ := strconv.ParseFloat(m[2], 64)
			if b.Initcalls == nil {
				b.Initcalls = map[string]float64{}
			}
			b.Initcalls[m[1]] += us / 1e6
		}
	}
	switch {
	case !c.Complete && !haveMark:
		return b, fmt.Errorf("the marker did not run (no %q on the console)", EndLine)
	case !haveRun:
		return b, fmt.Errorf("no \"Run /init as init process\" record in the kernel log")
	case !haveMark:
		return b, fmt.Errorf("no %q record in the kernel log", Stamp)
	case b.Marker < b.RunInit:
		return b, fmt.Errorf("marker at %.6f s before Run /init at %.6f s", b.Marker, b.RunInit)
	}
	if c.Status != nil {
		b.Spans = ofsrootSpans(c, b)
		b.Modules = c.Status.Modules
		for _, s := range c.Status.Steps {
			if strings.HasPrefix(s.Name, "modprobe") || strings.HasPrefix(s.Name, "load modules") {
				b.ModuleStep += s.Seconds
			}
		}
	} else {
		b.Spans = landmarkSpans(c, b)
	}
	return b, nil
}

// ofsrootSpans are ofsroot's steps: each starts at its own log line
// ("ofsroot: " + name) and lasts what the status record says; the gaps
// are named after what happens in them.
func ofsrootSpans(c *Console, b Boot) []Span {
	st := c.Status
	var spans []Span
	at := b.RunInit
	add := func(label string, start, end float64) {
		if end > start {
			spans = append(spans, Span{label, start, end})
		}
		at = end
	}
	// kmsg time minus CLOCK_MONOTONIC: from the start line when /dev/kmsg
	// already had it, else from the line logged right after the
	// hand-over time was taken.
	offset, haveOffset := 0.0, false
	for _, r := range c.Records {
		if m := ofsStart.FindStringSubmatch(r.Msg); m != nil {
			mono, _ := strconv.ParseFloat(m[1], 64)
			offset, haveOffset = r.T-mono, true
			break
		}
	}
	if !haveOffset && st.HandoverAt > 0 {
		for _, r := range c.Records {
			if strings.HasPrefix(r.Msg, "ofsroot: mode ") && strings.Contains(r.Msg, "stage took") {
				offset, haveOffset = r.T-st.HandoverAt, true
				break
			}
		}
	}
	if haveOffset && st.StartedAt > 0 {
		add("exec /init, Go start-up", at, st.StartedAt+offset)
	}
	i := 0
	for _, s := range st.Steps {
		for j := i; j < len(c.Records); j++ {
			r := c.Records[j]
			if r.Msg == "ofsroot: "+s.Name {
				if r.T-at > 0.002 {
					add("(between steps)", at, r.T)
				}
				add(s.Name, r.T, r.T+s.Seconds)
				i = j + 1
				break
			}
		}
	}
	if haveOffset && st.HandoverAt > 0 {
		h := st.HandoverAt + offset
		if h > at && h < b.Marker {
			add("(status record, logging)", at, h)
		}
	}
	add("switch_root, exec of the real init", at, b.Marker)
	return spans
}

// landmarkSpans cut another initramfs's stage at the kernel's own
// landmarks: the root's mount.
func landmarkSpans(c *Console, b Boot) []Span {
	var spans []Span
	at := b.RunInit
	for _, r := range c.Records {
		if r.T > at && r.T < b.Marker && rootMounted.MatchString(r.Msg) {
			spans = append(spans, Span{"to the root's mount (udev, modules, scripts)", at, r.T})
			at = r.T
			break
		}
	}
	label := "to the real init"
	if at != b.RunInit {
		label = "overlay, switch to the real init"
	}
	return append(spans, Span{label, at, b.Marker})
}
