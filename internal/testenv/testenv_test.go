package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestHelperSkips is run by TestSkipUnderCI in a child process, with
// TESTENV_HELPER naming the skip to take.
func TestHelperSkips(t *testing.T) {
	switch os.Getenv("TESTENV_HELPER") {
	case "":
		return // not a test of its own: only run as a child of TestSkipUnderCI
	case "unless":
		SkipUnlessCI(t, "needs a thing")
	case "even":
		SkipEvenInCI(t, "the kernel lacks a thing")
	case "tool":
		NeedTools(t, "no-such-tool-for-testenv")
	}
}

func TestSkipUnderCI(t *testing.T) {
	for _, tc := range []struct {
		helper, ci string
		fail       bool
		out        string
	}{
		{"unless", "", false, "--- SKIP: TestHelperSkips"},
		{"unless", "true", true, "CI is set, so this test may not skip: needs a thing"},
		{"unless", "false", false, "needs a thing"},
		{"even", "true", false, BeyondCI + "the kernel lacks a thing"},
		{"tool", "1", true, "needs no-such-tool-for-testenv, not installed"},
		{"tool", "", false, "--- SKIP"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSkips$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_HELPER="+tc.helper, "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.fail || !strings.Contains(string(out), tc.out) {
			t.Errorf("%s with CI=%q: failed=%v, want %v; output lacks %q?\n%s", tc.helper, tc.ci, failed, tc.fail, tc.out, out)
		}
	}
}
