package bootinit

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ofsroot/ofsroot/pkg/blockdev"
)

func TestLowerMarker(t *testing.T) {
	osr := []byte("ID=debian\nVERSION_ID=12\n")
	cases := []struct {
		name            string
		buildID, osRel  []byte
		want, notPrefix string
	}{
		{name: "build id", buildID: []byte("2026.11.30-abc\n"), osRel: osr, want: "build-id:2026.11.30-abc"},
		{name: "build id, blanks around", buildID: []byte("  x1 \nsecond line"), want: "build-id:x1"},
		{name: "empty build id: os-release", buildID: []byte("\n"), osRel: osr, want: "os-release:sha256:"},
		{name: "binary build id: os-release", buildID: []byte("a\x00b"), osRel: osr, want: "os-release:sha256:"},
		{name: "long build id: os-release", buildID: []byte(strings.Repeat("a", 129)), osRel: osr, want: "os-release:sha256:"},
		{name: "no os-release", want: "os-release:sha256:"},
	}
	for _, c := range cases {
		got := lowerMarker(c.buildID, c.osRel)
		if c.want != "" && !strings.HasPrefix(got, c.want) || strings.HasPrefix(c.want, "build-id:") && got != c.want {
			t.Errorf("%s: lowerMarker = %q, want %q", c.name, got, c.want)
		}
	}
	// The hash tells contents apart, and a missing file from an empty one.
	a, b := lowerMarker(nil, osr), lowerMarker(nil, []byte("ID=debian\nVERSION_ID=13\n"))
	none, empty := lowerMarker(nil, nil), lowerMarker(nil, []byte{})
	if a == b || none == empty || a != lowerMarker(nil, osr) {
		t.Errorf("markers: %s %s %s %s", a, b, none, empty)
	}
}

// Persistent layers made before the init computed SHA-256 itself
// recorded markers made with crypto/sha256: they must still match.
func TestLowerMarkerAsRecorded(t *testing.T) {
	old := func(osRelease []byte) string {
		h := sha256.New()
		if osRelease == nil {
			h.Write([]byte("no /etc/os-release"))
		} else {
			h.Write([]byte("/etc/os-release\x00"))
			h.Write(osRelease)
		}
		return fmt.Sprintf("os-release:sha256:%x", h.Sum(nil))
	}
	for _, osr := range [][]byte{nil, {}, []byte("ID=debian\nVERSION_ID=12\n"), []byte(strings.Repeat("PRETTY_NAME=\"x\"\n", 40))} {
		if got, want := lowerMarker(nil, osr), old(osr); got != want {
			t.Errorf("os-release %q: %s, recorded as %s", osr, got, want)
		}
	}
	if got := lowerMarker(nil, nil); got != "os-release:sha256:"+fmt.Sprintf("%x", sha256.Sum256([]byte("no /etc/os-release"))) {
		t.Errorf("no os-release: %s", got)
	}
}

func TestLowerRecord(t *testing.T) {
	r := lowerRecord{Version: 1, Root: rootIdentity(blockdev.Device{UUID: "u1", PartUUID: "p1"}), Marker: "build-id:7"}
	if r.Root != "UUID=u1" || rootIdentity(blockdev.Device{PartUUID: "p1"}) != "PARTUUID=p1" || rootIdentity(blockdev.Device{}) != "" {
		t.Errorf("rootIdentity: %q", r.Root)
	}
	same := r
	same.MadeAt, same.Device = "2026-01-01T00:00:00Z", "/dev/other"
	if !r.sameLower(same) {
		t.Errorf("time and device must not matter")
	}
	for _, o := range []lowerRecord{{Root: "UUID=u2", Marker: r.Marker}, {Root: r.Root, Marker: "build-id:8"}} {
		if r.sameLower(o) {
			t.Errorf("%v fits %v", o, r)
		}
	}
	for _, bad := range []string{"", "{", `{"root":"UUID=u1"}`, `[1]`, `{"marker":` + strings.Repeat(" ", maxLowerRecord) + `"x"}`} {
		if _, err := parseLowerRecord([]byte(bad)); err == nil {
			t.Errorf("parseLowerRecord(%.40q) accepted", bad)
		}
	}
	got, err := parseLowerRecord([]byte(`{"version":1,"root":"UUID=u1","marker":"build-id:7","made_at":"x"}`))
	if err != nil || !got.sameLower(r) {
		t.Errorf("parseLowerRecord = %+v, %v", got, err)
	}
}

func TestSetAsideName(t *testing.T) {
	now := time.Date(2026, 11, 30, 1, 2, 3, 0, time.UTC)
	taken := map[string]bool{}
	has := func(p string) bool { return taken[p] }
	if got := setAsideName("/rw/ofsroot", now, has); got != "/rw/ofsroot.20261130-010203" {
		t.Errorf("with a clock: %q", got)
	}
	taken["/rw/ofsroot.20261130-010203"] = true
	taken["/rw/ofsroot.20261130-010203.2"] = true
	if got := setAsideName("/rw/ofsroot", now, has); got != "/rw/ofsroot.20261130-010203.3" {
		t.Errorf("taken: %q", got)
	}
	epoch := time.Unix(12, 0)
	if got := setAsideName("/rw/ofsroot", epoch, has); got != "/rw/ofsroot.set-aside.1" {
		t.Errorf("no clock: %q", got)
	}
	taken["/rw/ofsroot.set-aside.1"] = true
	if got := setAsideName("/rw/ofsroot", epoch, has); got != "/rw/ofsroot.set-aside.2" {
		t.Errorf("no clock, taken: %q", got)
	}
}
