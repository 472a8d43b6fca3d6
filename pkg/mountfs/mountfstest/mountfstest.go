// Package mountfstest helps tests that mount for real: it moves the
// test into a private mount namespace, so nothing it mounts is seen
// outside or outlives it.
package mountfstest

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/internal/testenv"
)

// PrivateNamespace skips the test unless it runs as root, then moves the
// test's thread into a new mount namespace with every mount private. The
// thread stays locked: Go discards it when the test goroutine ends, and
// the namespace with it.
func PrivateNamespace(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t, "mounts for real in a private mount namespace")
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		t.Fatalf("unshare(CLONE_NEWNS): %v", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		t.Fatalf("making / private: %v", err)
	}
}

// NeedTools skips the test (fails it under CI) when a program it runs
// is not installed: testenv.NeedTools.
func NeedTools(t *testing.T, tools ...string) {
	t.Helper()
	testenv.NeedTools(t, tools...)
}
