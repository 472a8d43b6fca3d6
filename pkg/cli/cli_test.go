package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

func TestMainExitCodes(t *testing.T) {
	p := &Program{Name: "tool", Intro: "does things", Commands: map[string]Command{}}
	p.Commands["ok"] = Command{Summary: "works", Run: func([]string, io.Writer, io.Writer) error { return nil }}
	p.Commands["fail"] = Command{Summary: "fails", Run: func([]string, io.Writer, io.Writer) error { return errors.New("broke") }}
	p.Commands["misuse"] = Command{Summary: "misused", Run: func([]string, io.Writer, io.Writer) error { return fmt.Errorf("%w: no FILE", ErrUsage) }}
	p.Commands["missing"] = Command{Summary: "a path not there", Run: func([]string, io.Writer, io.Writer) error {
		_, err := os.Open("/no/such/file")
		return fmt.Errorf("reading the input: %w", err)
	}}
	p.Commands["code"] = Command{Summary: "exit 3", Run: func([]string, io.Writer, io.Writer) error { return ExitCode(3) }}
	p.Commands["flags"] = Command{Summary: "has flags", Run: func(args []string, _, stderr io.Writer) error {
		fs := p.FlagSet("flags", "[--x]", stderr)
		fs.Bool("x", false, "an x")
		return fs.Parse(args)
	}}
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{nil, 2, "Commands:", ""},
		{[]string{"--help"}, 0, "  fail       fails", ""},
		{[]string{"ok"}, 0, "", ""},
		{[]string{"fail"}, 1, "", "tool fail: broke"},
		{[]string{"misuse"}, 2, "", "tool misuse: usage: no FILE"},
		{[]string{"missing"}, 2, "", "tool missing: reading the input: open /no/such/file: no such file or directory"},
		{[]string{"code"}, 3, "", ""},
		{[]string{"nope"}, 2, "", `tool: no command "nope"`},
		{[]string{"flags", "--help"}, 0, "", "Usage: tool flags [--x]"},
		{[]string{"flags", "--bad"}, 2, "", "flag provided but not defined"},
		{[]string{"flags", "--x"}, 0, "", ""},
		{[]string{"--version"}, 0, "tool (devel)\n", ""},
		{[]string{"version"}, 0, "tool (devel)\n", ""},
	} {
		var out, errOut bytes.Buffer
		code := p.Main(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errOut.String(), tc.stderr) {
			t.Errorf("%q: code %d stdout %q stderr %q", tc.args, code, out.String(), errOut.String())
		}
	}
}

// TestParse: flags anywhere among the positional arguments, "--" ends
// the flags, a bad flag is a usage error.
func TestParse(t *testing.T) {
	for _, c := range []struct {
		args []string
		c    string
		n    bool
		pos  []string
		err  error
	}{
		{nil, "", false, nil, nil},
		{[]string{"on"}, "", false, []string{"on"}, nil},
		{[]string{"on", "-c", "cfg"}, "cfg", false, []string{"on"}, nil},
		{[]string{"-c", "cfg", "size", "20"}, "cfg", false, []string{"size", "20"}, nil},
		{[]string{"size", "-n", "20", "-c=x"}, "x", true, []string{"size", "20"}, nil},
		{[]string{"set", "--", "-c", "v"}, "", false, []string{"set", "-c", "v"}, nil},
		{[]string{"--", "--"}, "", false, []string{"--"}, nil},
		{[]string{"a", "-", "b"}, "", false, []string{"a", "-", "b"}, nil},
		{[]string{"on", "-x"}, "", false, nil, ErrUsage},
		{[]string{"on", "-h"}, "", false, nil, flag.ErrHelp},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg := fs.String("c", "", "")
		n := fs.Bool("n", false, "")
		err := Parse(fs, c.args)
		if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
			t.Errorf("%q: error %v, want %v", c.args, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		if *cfg != c.c || *n != c.n || strings.Join(fs.Args(), "|") != strings.Join(c.pos, "|") {
			t.Errorf("%q: -c %q -n %v args %q; want %q %v %q", c.args, *cfg, *n, fs.Args(), c.c, c.n, c.pos)
		}
	}
	// In order: flags stop at the first positional argument.
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	q := fs.Bool("q", false, "")
	if err := ParseInOrder(fs, []string{"-q", "ls", "-l"}); err != nil || !*q || strings.Join(fs.Args(), " ") != "ls -l" {
		t.Errorf("ParseInOrder: %v %v %q", err, *q, fs.Args())
	}
}
