package bootinit

import (
	"bytes"
	"errors"
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
