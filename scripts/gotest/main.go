// Command gotest runs `go test -json` with the given arguments and prints
// what plain `go test` prints (each package's ok/FAIL line, and the
// output of every failed test), then the skips with their reasons:
//
//	go run ./scripts/gotest -timeout 50m ./...
//
// Its exit code is go test's; when CI is set, a skip whose reason is
// not marked as beyond CI (internal/testenv: SkipEvenInCI, or -short) also
// makes it exit 1, so that a CI run cannot pass by skipping.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"

	"github.com/ofsroot/ofsroot/internal/testenv"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fmt.Fprintln(stdout, "Usage: go run ./scripts/gotest [go test flags] [packages]\n\n"+
			"Runs go test -json with the arguments, prints what go test prints without -v,\n"+
			"then the number of skipped tests and each one's reason. Exits with go test's\n"+
			"code; with CI set, a skip not marked \""+testenv.BeyondCI+"\" or \""+testenv.Short+"\" fails the run.")
		return 0
	}
	cmd := exec.Command("go", append([]string{"test", "-json"}, args...)...)
	cmd.Stderr = stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(stderr, "gotest:", err)
		return 2
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "gotest: go test:", err)
		return 2
	}
	s := newSummary(stdout)
	if err := s.read(pipe); err != nil {
		fmt.Fprintln(stderr, "gotest: reading go test -json:", err)
	}
	code := 0
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			fmt.Fprintln(stderr, "gotest: go test:", err)
			return 2
		}
		code = ee.ExitCode()
	}
	if bad := s.report(stdout, testenv.CI()); bad > 0 && code == 0 {
		code = 1
	}
	return code
}

// event is one line of go test -json (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// Skip is one skipped test and the reason it logged.
type Skip struct {
	Package, Test, Reason string
}

// Justified reports whether a CI run may skip for this reason.
func (s Skip) Justified() bool {
	return strings.HasPrefix(s.Reason, testenv.BeyondCI) || strings.HasPrefix(s.Reason, testenv.Short)
}

type summary struct {
	out    io.Writer
	buf    map[string][]string // package + test -> output so far
	Skips  []Skip
	Passed int
	Failed int
}

func newSummary(out io.Writer) *summary {
	return &summary{out: out, buf: map[string][]string{}}
}

// read consumes go test -json output, printing as plain go test would.
func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(s.out, "%s\n", line)
			continue
		}
		s.event(e)
	}
	return sc.Err()
}

func (s *summary) event(e event) {
	key := e.Package + "\x00" + e.Test
	switch e.Action {
	case "build-output":
		fmt.Fprint(s.out, e.Output)
	case "output":
		if e.Test == "" {
			if strings.HasPrefix(e.Output, "FAIL") {
				s.flush(e.Package) // what the unfinished tests said comes first
			}
			if e.Output != "PASS\n" {
				fmt.Fprint(s.out, e.Output)
			}
			return
		}
		s.buf[key] = append(s.buf[key], e.Output)
	case "pass":
		if e.Test != "" {
			s.Passed++
		}
		delete(s.buf, key)
	case "skip":
		if e.Test != "" {
			s.Skips = append(s.Skips, Skip{e.Package, e.Test, reason(s.buf[key])})
		}
		delete(s.buf, key)
	case "fail":
		if e.Test != "" {
			s.Failed++
			fmt.Fprint(s.out, strings.Join(s.buf[key], ""))
			delete(s.buf, key)
			return
		}
		s.flush(e.Package)
	}
}

// flush prints what the unfinished tests of a failed package said: a
// panic or a timeout stops them without an event of their own.
func (s *summary) flush(pkg string) {
	var keys []string
	for k := range s.buf {
		if strings.HasPrefix(k, pkg+"\x00") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprint(s.out, strings.Join(s.buf[k], ""))
		delete(s.buf, k)
	}
}

// reason is what a skipped test logged, without go test's own lines.
func reason(lines []string) string {
	var r []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		// "file_test.go:12: reason": the reason.
		if i := strings.Index(t, ": "); i > 0 && strings.Contains(t[:i], ".go:") {
			t = t[i+2:]
		}
		r = append(r, t)
	}
	if len(r) == 0 {
		return "(no reason given)"
	}
	return strings.Join(r, " / ")
}

// report prints the totals and every skip with its reason, and returns
// the number of skips CI does not allow (0 unless ci).
func (s *summary) report(w io.Writer, ci bool) int {
	fmt.Fprintf(w, "\ntests: %d passed, %d failed, %d skipped\n", s.Passed, s.Failed, len(s.Skips))
	sort.Slice(s.Skips, func(i, j int) bool {
		a, b := s.Skips[i], s.Skips[j]
		return a.Package+" "+a.Test < b.Package+" "+b.Test
	})
	bad := 0
	for _, k := range s.Skips {
		mark := "  skip"
		if ci && !k.Justified() {
			mark = "  SKIP NOT ALLOWED IN CI"
			bad++
		}
		fmt.Fprintf(w, "%s %s %s: %s\n", mark, strings.TrimPrefix(k.Package, "github.com/ofsroot/ofsroot/"), k.Test, k.Reason)
	}
	if bad > 0 {
		fmt.Fprintf(w, "%d skips without a reason the CI machine cannot meet: CI is set, so the run fails (use internal/testenv).\n", bad)
	}
	return bad
}
