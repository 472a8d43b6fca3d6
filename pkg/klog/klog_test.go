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

// TestEcho: a progress line reaches the console only through the kernel,
// which echoes it unless quiet or loglevel= say not to; a warning always
// reaches it, exactly once.
func TestEcho(t *testing.T) {
	for _, tc := range []struct {
		consoleLevel int
		kmsgWorks    bool
		wantConsole  bool
	}{
		{7, true, false}, // kernel echoes notice (5 < 7)
		{4, true, false}, // "quiet": the kernel keeps it in dmesg, so do we
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
		l.Warnf("line %d", i)
	}
	if asked != 2 {
		t.Errorf("console level read %d times, want 2 (unknown, then known)", asked)
	}
}

// TestWarningsUnderQuiet: with quiet (console level 4) the kernel does
// not echo a warning (4), so the logger writes it; an error (3) it echoes.
func TestWarningsUnderQuiet(t *testing.T) {
	kmsg := filepath.Join(t.TempDir(), "kmsg")
	os.WriteFile(kmsg, nil, 0o600)
	var con bytes.Buffer
	l := &Logger{Console: &con, KmsgPath: kmsg, ConsoleLevel: func() int { return 4 }}
	l.Warnf("w")
	l.Errorf("e")
	if con.String() != "ofsroot: warning: w\n" {
		t.Errorf("console %q", con.String())
	}
	data, _ := os.ReadFile(kmsg)
	if string(data) != "<4>ofsroot: warning: w\n<3>ofsroot: error: e\n" {
		t.Errorf("kmsg %q", data)
	}
}

// TestHeldUntilKmsg: progress lines logged before /dev/kmsg exists go to
// it, in order, once it does; a warning before then brings them to the
// console instead.
func TestHeldUntilKmsg(t *testing.T) {
	kmsg := filepath.Join(t.TempDir(), "kmsg")
	var con bytes.Buffer
	l := &Logger{Console: &con, KmsgPath: kmsg, ConsoleLevel: func() int { return 4 }}
	l.Infof("start")
	l.Infof("mount /proc")
	if con.Len() != 0 {
		t.Errorf("console before kmsg: %q", con.String())
	}
	os.WriteFile(kmsg, nil, 0o600)
	l.Infof("mount /dev")
	data, _ := os.ReadFile(kmsg)
	if string(data) != "<5>ofsroot: start\n<5>ofsroot: mount /proc\n<5>ofsroot: mount /dev\n" {
		t.Errorf("kmsg %q", data)
	}

	con.Reset()
	l = &Logger{Console: &con, KmsgPath: filepath.Join(t.TempDir(), "none"), ConsoleLevel: func() int { return 4 }}
	l.Infof("start")
	l.Errorf("cannot mount /dev")
	if con.String() != "ofsroot: start\nofsroot: error: cannot mount /dev\n" {
		t.Errorf("no kmsg: console %q", con.String())
	}
	if len(l.Lines) != 2 {
		t.Errorf("lines %q", l.Lines)
	}
}
