package bootbench

import (
	"math"
	"strings"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestParseRecord(t *testing.T) {
	r, err := ParseRecord("13,386,13625237,-;ofsbench: marker")
	if err != nil || r.Level != 5 || r.Seq != 386 || !near(r.T, 13.625237) || r.Msg != "ofsbench: marker" {
		t.Errorf("got %+v, %v", r, err)
	}
	r, err = ParseRecord("6,1,5,c;a;b") // ';' in the message stays
	if err != nil || r.Msg != "a;b" || r.Level != 6 {
		t.Errorf("got %+v, %v", r, err)
	}
	for _, bad := range []string{"", "no semicolon", "6,1;x", "x,1,2,-;m", "6,1,-2,-;m", "-1,1,2,-;m"} {
		if _, err := ParseRecord(bad); err == nil {
			t.Errorf("ParseRecord(%q) accepted", bad)
		}
	}
}

// console builds a marker console log from records "T MSG".
func console(recs ...string) string {
	var b strings.Builder
	b.WriteString("[    0.000000] Linux version 6.1\r\nnoise ofsbench-kmsg: not at the start\n")
	b.WriteString("ofsbench: begin\n")
	for i, r := range recs {
		t, msg, _ := strings.Cut(r, " ")
		us := strings.ReplaceAll(t, ".", "")
		b.WriteString("ofsbench-kmsg: 6," + itoa(i) + "," + strings.TrimLeft(us, "0") + ",-;" + msg + "\r\n")
	}
	return b.String()
}

func itoa(i int) string {
	const d = "0123456789"
	if i < 10 {
		return d[i : i+1]
	}
	return itoa(i/10) + d[i%10:i%10+1]
}

func TestAnalyzeFloorAndPeer(t *testing.T) {
	text := console("0.500000 Trying to unpack rootfs image as initramfs...", "0.750000 Freeing initrd memory: 580K",
		"1.000000 Run /init as init process", "1.040000 ofsbench: marker") + "ofsbench: end\n"
	c, err := ParseConsole(text)
	if err != nil || !c.Complete || len(c.Records) != 4 {
		t.Fatalf("%+v %v", c, err)
	}
	b, err := Analyze(c)
	if err != nil || !near(b.Stage(), 0.04) || !near(b.Unpack, 0.25) || len(b.Spans) != 1 || b.Spans[0].Label != "to the real init" {
		t.Errorf("floor: %+v %v", b, err)
	}

	text = console("2.000000 Run /init as init process",
		"3.500000 EXT4-fs (vda): mounted filesystem with ordered data mode. Quota mode: none.",
		"4.000000 ofsbench: marker") + "ofsbench: end\n"
	c, _ = ParseConsole(text)
	b, err = Analyze(c)
	if err != nil || !near(b.Stage(), 2) || len(b.Spans) != 2 || !near(b.Spans[0].End-b.Spans[0].Start, 1.5) {
		t.Errorf("peer: %+v %v", b, err)
	}
}

func TestAnalyzeOfsroot(t *testing.T) {
	// The start line went to the console only (no /dev/kmsg yet); the
	// offset between the clocks comes from the "stage took" line.
	status := `ofsbench-status: { "version": 1, "started_at": 0.990, "handover_at": 1.290, ` +
		`"steps": [ {"name": "mount -t proc proc /proc", "seconds": 0.001}, {"name": "modprobe (modules)", "seconds": 0.1}, {"name": "find root device \"/dev/vda\"", "seconds": 0.05} ], ` +
		`"modules": [ {"name": "virtio_blk", "result": "loaded", "seconds": 0.02} ] }`
	text := console("1.000000 Run /init as init process",
		"1.100000 ofsroot: modprobe (modules)",
		"1.102000 calling  virtio_blk_init+0x0/0x1000 [virtio_blk] @ 1",
		"1.110000 initcall virtio_blk_init+0x0/0x1000 [virtio_blk] returned 0 after 8000 usecs",
		"1.200000 ofsroot: find root device \"/dev/vda\"",
		"1.300000 ofsroot: mode protected; stage took 0.300 s",
		"1.400000 ofsbench: marker") + status + "\nofsbench: end\n"
	c, err := ParseConsole(text)
	if err != nil || c.Status == nil {
		t.Fatalf("%+v %v", c, err)
	}
	b, err := Analyze(c)
	if err != nil {
		t.Fatal(err)
	}
	want := []Span{
		{"exec /init, Go start-up", 1.0, 1.0}, // started_at 0.990 + offset 0.010
		{"(between steps)", 1.0, 1.1},
		{"modprobe (modules)", 1.1, 1.2},
		{"find root device \"/dev/vda\"", 1.2, 1.25},
		{"(status record, logging)", 1.25, 1.3},
		{"switch_root, exec of the real init", 1.3, 1.4},
	}
	// The first span is empty and dropped.
	want = want[1:]
	if len(b.Spans) != len(want) {
		t.Fatalf("spans %+v", b.Spans)
	}
	for i, s := range b.Spans {
		if s.Label != want[i].Label || !near(s.Start, want[i].Start) || !near(s.End, want[i].End) {
			t.Errorf("span %d: %+v, want %+v", i, s, want[i])
		}
	}
	if !near(b.ModuleStep, 0.1) || !near(b.Initcalls["virtio_blk"], 0.008) || len(b.Modules) != 1 {
		t.Errorf("modules: step %v initcalls %v modules %v", b.ModuleStep, b.Initcalls, b.Modules)
	}
}

func TestAnalyzeFailures(t *testing.T) {
	for name, text := range map[string]string{
		"no marker":        console("1.0 Run /init as init process"),
		"no Run /init":     console("1.0 ofsbench: marker") + "ofsbench: end\n",
		"marker before":    console("2.0 Run /init as init process", "1.0 ofsbench: marker") + "ofsbench: end\n",
		"marker cut short": console("1.0 Run /init as init process") + "ofsbench: end\n",
	} {
		c, err := ParseConsole(text)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := Analyze(c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := ParseConsole("ofsbench-kmsg: garbage\n"); err == nil {
		t.Error("a malformed record was accepted")
	}
	if _, err := ParseConsole("ofsbench-status: {\n"); err == nil {
		t.Error("a malformed status was accepted")
	}
}

func TestMedianSpansAndTypical(t *testing.T) {
	boots := []Boot{
		{RunInit: 1, Marker: 2, Spans: []Span{{"a", 1, 1.2}, {"b", 1.2, 2}}},
		{RunInit: 1, Marker: 4, Spans: []Span{{"a", 1, 1.6}, {"c", 1.6, 2}, {"b", 2, 4}}},
		{RunInit: 1, Marker: 3, Spans: []Span{{"a", 1, 1.4}, {"b", 1.4, 3}}},
	}
	got := MedianSpans(boots)
	want := []Span{{"a", 0, 0.4}, {"b", 0.4, 2}, {"c", 2, 2.4}}
	if len(got) != len(want) {
		t.Fatalf("%+v", got)
	}
	for i := range got {
		if got[i].Label != want[i].Label || !near(got[i].Start, want[i].Start) || !near(got[i].End, want[i].End) {
			t.Errorf("span %d %+v, want %+v", i, got[i], want[i])
		}
	}
	r := &Result{Boots: boots}
	if b, ok := r.Typical(); !ok || b.Marker != 3 {
		t.Errorf("typical %+v", b)
	}
	if _, ok := (&Result{}).Typical(); ok {
		t.Error("typical of nothing")
	}
}

func TestPlot(t *testing.T) {
	svg := Plot("t <1>", []Row{
		{Name: "ofsroot", Spans: []Span{{"modprobe", 0, 0.3}, {"mount & co", 0.3, 0.4}}},
		{Name: "floor", Spans: []Span{{"to the real init", 0, 0.04}}},
	})
	for _, s := range []string{"<svg ", "</svg>", "t &lt;1&gt;", ">ofsroot<", ">floor<", "mount &amp; co", "0.4 s", "0.400 s", "0.040 s"} {
		if !strings.Contains(svg, s) {
			t.Errorf("no %q in\n%s", s, svg)
		}
	}
	if n := strings.Count(svg, "<title>"); n != 3 {
		t.Errorf("%d bars", n)
	}
	for maxT, want := range map[float64]float64{0.4: 0.05, 5.26: 1, 1: 0.2, 0.08: 0.01} {
		if got := niceStep(maxT); !near(got, want) {
			t.Errorf("niceStep(%v) = %v, want %v", maxT, got, want)
		}
	}
}

func TestSlug(t *testing.T) {
	if got := slug("initramfs-tools + overlayroot, MODULES=most"); got != "initramfs-tools-overlayroot-modules-most" {
		t.Errorf("slug %q", got)
	}
}
