// Package testenv is the one place a test decides that it cannot run
// here. Every skip in the tree goes through it, so that a CI run cannot
// pass by skipping:
//
//   - SkipUnlessCI(t, reason): the host lacks something a CI machine has
//     (a tool scripts/setup-host.sh installs, root, a loop device, a
//     downloaded kernel). Outside CI the test is skipped with the reason;
//     when CI is set the test fails with it instead.
//   - SkipEvenInCI(t, reason): a reason the CI machine cannot meet
//     either (the host kernel lacks a feature the test needs). The reason
//     is marked with BeyondCI so that the summary of `make test`
//     (scripts/gotest) counts it as justified.
//   - SkipIfShort(t, what): the test is slow and -short asked to leave
//     it out (CI never passes -short).
//
// The Need* helpers are the usual reasons: NeedRoot, NeedTools, and
// Loop, which attaches a loop device and says loudly when it cannot.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// BeyondCI starts the reason of every skip the CI machine cannot avoid
// (SkipEvenInCI); Short starts the reason of every -short skip. A skip
// reason starting with neither fails a CI run (see scripts/gotest).
const (
	BeyondCI = "beyond CI: "
	Short    = "-short: "
)

// CI reports whether the CI environment variable is set (to anything but
// "", "0" or "false"): the run must execute every test it can.
func CI() bool {
	switch strings.ToLower(os.Getenv("CI")) {
	case "", "0", "false", "no":
		return false
	}
	return true
}

// SkipUnlessCI skips t saying why, unless CI is set: then what is
// missing is a fault of the CI machine and t fails with the same reason.
func SkipUnlessCI(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("CI is set, so this test may not skip: %s (the CI machine must provide it: scripts/setup-host.sh)", reason)
	}
	t.Skip(reason)
}

// SkipEvenInCI skips t for a reason the CI machine cannot meet either,
// such as a kernel feature the host kernel lacks. Say which.
func SkipEvenInCI(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Skip(BeyondCI + fmt.Sprintf(format, args...))
}

// SkipIfShort skips t under -short; what says what makes it slow.
func SkipIfShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skip(Short + what)
	}
}

// NeedRoot skips t (or fails it under CI) unless it runs as root; why
// says what needs root.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipUnlessCI(t, "needs root: %s", why)
	}
}

// NeedTools skips t (or fails it under CI) when a program it runs is not
// installed.
func NeedTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			SkipUnlessCI(t, "needs %s, not installed (scripts/setup-host.sh installs it)", tool)
		}
	}
}

// Loop attaches file to a free loop device with losetup (extra args such
// as "--partscan" or "--read-only" go before the file) and detaches it
// when t ends. A host that gives no loop device is said loudly: the
// privileged test cannot run.
func Loop(t testing.TB, file string, args ...string) string {
	t.Helper()
	NeedRoot(t, "attaches a loop device")
	NeedTools(t, "losetup")
	out, err := exec.Command("losetup", append(append([]string{"--find", "--show"}, args...), file)...).CombinedOutput()
	if err != nil {
		SkipUnlessCI(t, "NO LOOP DEVICE: losetup --find --show %s: %v: %s (load the loop module; in a container, give it /dev/loop-control and /dev/loop*)",
			file, err, strings.TrimSpace(string(out)))
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Logf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}
