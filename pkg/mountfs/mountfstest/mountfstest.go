// Package mountfstest helps tests that mount for real: it moves the
// test into a private mount namespace, so nothing it mounts is seen
// outside or outlives it.
package mountfstest

import (
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// PrivateNamespace skips the test unless it runs as root, then moves the
// test's thread into a new mount namespace with every mount private. The
// thread stays locked: Go discards it when the test goroutine ends, and
// the namespace with it.
func PrivateNamespace(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: mounts for real in a private mount namespace")
	}
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		t.Fatalf("unshare(CLONE_NEWNS): %v", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		t.Fatalf("making / private: %v", err)
	}
}

// NeedTools skips the test when a program it runs is not installed.
func NeedTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (scripts/setup-host.sh installs it)", tool)
		}
	}
}
