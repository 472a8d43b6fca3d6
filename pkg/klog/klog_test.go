package klog

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseConsoleLevel(t *testing.T) {
	for in, want := range map[string]int{"7\t4\t1\t7\n": 7, "4 4 1 7": 4, "": 0, "x 1": 0} {
		if got := ParseConsoleLevel(in); got != want {
			t.Errorf("ParseConsoleLevel(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestEcho: a line goes to the console exactly once, whether or not the
// kernel echoes it.
func TestEcho(t *testing.T) {
	for _, tc := range []struct {
		consoleLevel int
		kmsgWorks    bool
		wantConsole  bool
	}{
		{7, true, false}, // kernel echoes notice (5 < 7)
		{4, true, true},  // "quiet": the kernel does not echo notice
		{7, false, true}, // no /dev/kmsg: console only
	} {
		kmsg := filepath.Join(t.TempDir(), "kmsg")
		if tc.kmsgWorks {
			os.WriteFile(kmsg, nil, 0o600)
		}
		var con bytes.Buffer
		l := &Logger{Console: &con, KmsgPath: kmsg, ConsoleLevel: func() int { return tc.consoleLevel }}
		l.Infof("mounted %s", "/proc")
		if got := strings.Contains(con.String(), "ofsroot: mounted /proc"); got != tc.wantConsole {
			t.Errorf("%+v: console got %q", tc, con.String())
		}
		if tc.kmsgWorks {
			data, _ := os.ReadFile(kmsg)
			if string(data) != "<5>ofsroot: mounted /proc\n" {
				t.Errorf("kmsg got %q", data)
			}
		}
	}
}

func TestKindsAndLines(t *testing.T) {
	var con bytes.Buffer
	l := &Logger{Console: &con}
	l.Warnf("ofs-size=%s", "abc")
	l.Errorf("no root")
	l.Loudf("DEGRADED: one\ntwo")
	out := con.String()
	for _, s := range []string{"ofsroot: warning: ofs-size=abc\n", "ofsroot: error: no root\n", "ofsroot: !! DEGRADED: one\n", "ofsroot: !! two\n"} {
		if !strings.Contains(out, s) {
			t.Errorf("console lacks %q:\n%s", s, out)
		}
	}
	if len(l.Lines) != 6 {
		t.Errorf("kept %d lines", len(l.Lines))
	}
}

// TestConsoleLevelAskedOnce: the level is read until it is known, then
// remembered.
func TestConsoleLevelAskedOnce(t *testing.T) {
	kmsg := filepath.Join(t.TempDir(), "kmsg")
	os.WriteFile(kmsg, nil, 0o600)
	answers, asked := []int{0, 7}, 0
	l := &Logger{Console: &bytes.Buffer{}, KmsgPath: kmsg, ConsoleLevel: func() int {
		asked++
		return answers[min(asked-1, len(answers)-1)]
	}}
	for i := 0; i < 5; i++ {
		l.Infof("line %d", i)
	}
	if asked != 2 {
		t.Errorf("console level read %d times, want 2 (unknown, then known)", asked)
	}
}
