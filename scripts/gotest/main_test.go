package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/internal/testenv"
)

// A slice of real go test -json output: a pass, a skip beyond CI, a plain
// skip, a failed subtest, a package that panicked, a build failure.
const stream = `{"Action":"start","Package":"ex/a"}
{"Action":"run","Package":"ex/a","Test":"TestOK"}
{"Action":"output","Package":"ex/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"ex/a","Test":"TestOK","Output":"--- PASS: TestOK (0.00s)\n"}
{"Action":"pass","Package":"ex/a","Test":"TestOK"}
{"Action":"run","Package":"ex/a","Test":"TestKernel"}
{"Action":"output","Package":"ex/a","Test":"TestKernel","Output":"=== RUN   TestKernel\n"}
{"Action":"output","Package":"ex/a","Test":"TestKernel","Output":"    k_test.go:9: ` + testenv.BeyondCI + `kernel 6.1 lacks MOVE_MOUNT_BENEATH\n"}
{"Action":"output","Package":"ex/a","Test":"TestKernel","Output":"--- SKIP: TestKernel (0.00s)\n"}
{"Action":"skip","Package":"ex/a","Test":"TestKernel"}
{"Action":"output","Package":"ex/a","Test":"TestTool","Output":"    t_test.go:3: mkimage not installed\n"}
{"Action":"skip","Package":"ex/a","Test":"TestTool"}
{"Action":"run","Package":"ex/a","Test":"TestSub/x"}
{"Action":"output","Package":"ex/a","Test":"TestSub/x","Output":"    s_test.go:5: got 1, want 2\n"}
{"Action":"output","Package":"ex/a","Test":"TestSub/x","Output":"    --- FAIL: TestSub/x (0.00s)\n"}
{"Action":"fail","Package":"ex/a","Test":"TestSub/x"}
{"Action":"fail","Package":"ex/a","Test":"TestSub"}
{"Action":"output","Package":"ex/a","Output":"FAIL\n"}
{"Action":"output","Package":"ex/a","Output":"FAIL\tex/a\t0.01s\n"}
{"Action":"fail","Package":"ex/a"}
{"Action":"output","Package":"ex/b","Test":"TestHang","Output":"panic: test timed out after 1s\n"}
{"Action":"output","Package":"ex/b","Output":"FAIL\tex/b\t1.00s\n"}
{"Action":"fail","Package":"ex/b"}
{"ImportPath":"ex/c","Action":"build-output","Output":"c.go:1:1: expected 'package'\n"}
{"Action":"output","Package":"ex/d","Output":"PASS\n"}
{"Action":"output","Package":"ex/d","Output":"ok  \tex/d\t0.02s\n"}
`

func TestSummary(t *testing.T) {
	var out bytes.Buffer
	s := newSummary(&out)
	if err := s.read(strings.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	bad := s.report(&out, true)
	got := out.String()
	for _, want := range []string{
		"got 1, want 2\n    --- FAIL: TestSub/x", "FAIL\tex/a\t0.01s", "panic: test timed out after 1s\nFAIL\tex/b", "c.go:1:1: expected 'package'", "ok  \tex/d",
		"tests: 1 passed, 2 failed, 2 skipped",
		"  skip ex/a TestKernel: " + testenv.BeyondCI + "kernel 6.1 lacks MOVE_MOUNT_BENEATH",
		"  SKIP NOT ALLOWED IN CI ex/a TestTool: mkimage not installed",
		"1 skips without a reason",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, not := range []string{"=== RUN", "--- PASS", "PASS\n"} {
		if strings.Contains(got, not) {
			t.Errorf("output has %q (plain go test prints no such line):\n%s", not, got)
		}
	}
	if bad != 1 {
		t.Errorf("report counted %d skips CI does not allow, want 1", bad)
	}
	if bad := s.report(&bytes.Buffer{}, false); bad != 0 {
		t.Errorf("without CI, %d skips counted as not allowed", bad)
	}
}
