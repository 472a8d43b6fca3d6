package bootinit

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ofsroot/ofsroot/pkg/klog"
)

func testLogger() (*klog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return &klog.Logger{Console: &b}, &b
}

func TestExecutor(t *testing.T) {
	log, out := testLogger()
	var clock time.Duration
	x := &Executor{Log: log, Now: func() time.Duration { clock += 10 * time.Millisecond; return clock }}
	boom := errors.New("boom")
	ran := []string{}
	step := func(name string, optional bool, err error) Step {
		return Step{Name: name, Optional: optional, Do: func() error { ran = append(ran, name); return err }}
	}
	err := x.Run(step("mount -t proc proc /proc", false, nil), step("optional thing", true, boom), step("required thing", false, boom), step("never", false, nil))
	var se *StepError
	if !errors.As(err, &se) || se.Step != "required thing" || !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if strings.Join(ran, "|") != "mount -t proc proc /proc|optional thing|required thing" {
		t.Errorf("ran %v", ran)
	}
	if len(x.Steps) != 3 || x.Steps[1].Error != "boom" || !x.Steps[1].Optional || x.Steps[0].Seconds != 0.01 {
		t.Errorf("recorded %+v", x.Steps)
	}
	for _, want := range []string{"ofsroot: mount -t proc proc /proc\n", "ofsroot: warning: optional thing: boom (optional, going on)\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// TestExecutorWhenAndLate: an entry's When and Steps are asked as it
// comes up, after the steps before it ran: a skipped entry is neither
// run, logged nor recorded; a late one is named from what the earlier
// steps learned, in the log and in the record alike.
func TestExecutorWhenAndLate(t *testing.T) {
	log, out := testLogger()
	x := &Executor{Log: log, Now: func() time.Duration { return 0 }}
	root := ""
	var ran []string
	do := func(name string) func() error { return func() error { ran = append(ran, name); return nil } }
	err := x.Run(
		Step{Name: "find root", Do: func() error { root = "/dev/vda"; return nil }},
		Step{When: func() bool { return root == "" }, Name: "never: the root is found", Do: do("never")},
		Step{When: func() bool { return root != "" }, Steps: func() []Step {
			return []Step{{Name: "mount " + root, Do: do("mount " + root)}, {Name: "modprobe", Do: do("modprobe")}}
		}},
		Step{When: func() bool { return false }, Steps: func() []Step { t.Error("a skipped entry's steps were made"); return nil }},
	)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ran, "|") != "mount /dev/vda|modprobe" {
		t.Errorf("ran %q", ran)
	}
	var names []string
	for _, s := range x.Steps {
		names = append(names, s.Name)
	}
	if strings.Join(names, "|") != "find root|mount /dev/vda|modprobe" {
		t.Errorf("recorded %q", names)
	}
	if want := "ofsroot: find root\nofsroot: mount /dev/vda\nofsroot: modprobe\n"; out.String() != want {
		t.Errorf("log %q, want %q", out, want)
	}
}

// TestExecutorOnError: a group ends at its first required failure,
// whose OnError gets it (as a StepError); nil lets the run go on, an
// error ends it. An optional failure is not the group's.
func TestExecutorOnError(t *testing.T) {
	boom := errors.New("boom")
	log, _ := testLogger()
	x := &Executor{Log: log, Now: func() time.Duration { return 0 }}
	var ran []string
	step := func(name string, optional bool, err error) Step {
		return Step{Name: name, Optional: optional, Do: func() error { ran = append(ran, name); return err }}
	}
	var got []error
	keep := func(err error) error { got = append(got, err); return nil }
	err := x.Run(
		Step{Steps: func() []Step {
			return []Step{step("a1", true, boom), step("a2", false, nil)}
		}, OnError: func(err error) error { t.Errorf("OnError for a group that worked: %v", err); return err }},
		Step{Steps: func() []Step {
			return []Step{step("b1", false, nil), step("b2", false, boom), step("b3", false, nil)}
		}, OnError: keep},
		Step{When: func() bool { return len(got) == 1 }, Steps: func() []Step { return []Step{step("c1", false, boom)} }, OnError: keep},
		step("d1", false, boom),
		Step{OnError: keep, Name: "e1", Do: func() error { ran = append(ran, "e1"); return boom }},
	)
	if strings.Join(ran, "|") != "a1|a2|b1|b2|c1|d1" {
		t.Errorf("ran %q", ran)
	}
	var se *StepError
	if len(got) != 2 || !errors.As(got[0], &se) || se.Step != "b2" || !errors.As(got[1], &se) || se.Step != "c1" {
		t.Errorf("OnError got %v", got)
	}
	if !errors.As(err, &se) || se.Step != "d1" {
		t.Errorf("err %v, want d1's", err)
	}
	x.Steps, ran, got = nil, nil, nil
	err = x.Run(Step{OnError: keep, Name: "e1", Do: func() error { ran = append(ran, "e1"); return boom }}, step("f1", false, nil),
		Step{OnError: func(err error) error { return fmt.Errorf("given up: %w", err) }, Steps: func() []Step { return []Step{step("g1", false, boom)} }},
		step("never", false, nil))
	if strings.Join(ran, "|") != "e1|f1|g1" || len(got) != 1 || !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "given up: g1: boom") {
		t.Errorf("ran %q, OnError got %v, err %v", ran, got, err)
	}
}

func TestParseMemTotal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  bool
	}{
		{"MemTotal:        1012340 kB\nMemFree: 1 kB\n", 1012340 * 1024, false},
		{"MemFree: 1 kB\nMemTotal: 4 kB", 4096, false},
		{"MemTotal: 4", 4096, false},
		{"MemTotal: x kB", 0, true},
		{"MemTotal: 4 MB", 0, true},
		{"", 0, true},
	} {
		got, err := ParseMemTotal(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseMemTotal(%q) = %d, %v", tc.in, got, err)
		}
	}
}
