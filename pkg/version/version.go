// Package version is the one home of the ofsroot version: the release
// `make dist` stamps into every program it builds (ofsroot, ofsctl and
// the init) with
//
//	go build -ldflags "-X github.com/ofsroot/ofsroot/pkg/version.Version=1.2.3"
//
// and what they print for --version, log at boot and record in
// status.json and build.json.
package version

import (
	"runtime/debug"
	"strings"
)

// Version is set at build time with -ldflags -X (see LDFlag). Empty in a
// plain `go build` or `go run`: Get then falls back to the build
// information.
var Version = ""

// Var is the full name of Version, for -ldflags -X.
const Var = "github.com/ofsroot/ofsroot/pkg/version.Version"

// Devel is what a build from a source tree without a stamp reports.
const Devel = "(devel)"

// LDFlag returns the -X flag that stamps v into a build ("" when v is
// empty, so that the build is not stamped).
func LDFlag(v string) string {
	if v == "" {
		return ""
	}
	return "-X " + Var + "=" + v
}

// isPseudoVersion says whether v is a version the go command makes up
// from a commit (v0.0.0-20250101120000-0123456789ab), which carries its
// time: somewhere in it a '-' or '.', 14 digits, '-', 12 lower-case hex
// digits, then '+' or the end. (By hand, not with regexp: the package is
// linked into the init, and regexp adds a quarter of a megabyte to it.)
func isPseudoVersion(v string) bool {
	for i := 0; i+28 <= len(v); i++ {
		if v[i] != '-' && v[i] != '.' {
			continue
		}
		rest := v[i+1:]
		if !all(rest[:14], "0123456789") || rest[14] != '-' || !all(rest[15:27], "0123456789abcdef") {
			continue
		}
		if len(rest) == 27 || rest[27] == '+' {
			return true
		}
	}
	return false
}

// all says whether every byte of s is one of set's.
func all(s, set string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(set, s[i]) < 0 {
			return false
		}
	}
	return true
}

// Get returns the version of the running program: the stamped Version,
// else the release it was installed from ("go install ...@v1.2.3"), else
// Devel. A version the go command made up from a commit and its time, or
// from a modified tree (+dirty), counts as Devel, so that what a build
// records does not depend on how its tool was built.
func Get() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Devel
	}
	return fromBuildInfo(bi.Main.Version)
}

func fromBuildInfo(v string) string {
	if v == "" || v == Devel || isPseudoVersion(v) || strings.HasSuffix(v, "+dirty") {
		return Devel
	}
	return v
}
