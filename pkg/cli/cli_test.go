package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestMainExitCodes(t *testing.T) {
	p := &Program{Name: "tool", Intro: "does things", Commands: map[string]Command{}}
	p.Commands["ok"] = Command{Summary: "works", Run: func([]string, io.Writer, io.Writer) error { return nil }}
	p.Commands["fail"] = Command{Summary: "fails", Run: func([]string, io.Writer, io.Writer) error { return errors.New("broke") }}
	p.Commands["misuse"] = Command{Summary: "misused", Run: func([]string, io.Writer, io.Writer) error { return fmt.Errorf("%w: no FILE", ErrUsage) }}
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
