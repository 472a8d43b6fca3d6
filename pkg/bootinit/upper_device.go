package bootinit

import (
	"errors"
	"fmt"
	"github.com/ofsroot/ofsroot/internal/smalljson"
	"strings"
	"time"

	"github.com/ofsroot/ofsroot/internal/sha256sum"
	"github.com/ofsroot/ofsroot/pkg/blockdev"
)

// A persistent layer (ofs-upper=DEVICE) is bound to the lower it was
// made on: LowerRecordFile beside its upper/ and work/ folders says which
// one. The parts here are pure; upper_device_linux.go does the mounting.

// LowerRecordFile is the record of a persistent layer's lower, in the
// layer's folder (DIR/lower.json).
const LowerRecordFile = "lower.json"

// BuildIDFile is the image's build id in the root, written by ofsroot
// image: the lower's content marker when there is one.
const BuildIDFile = "/etc/ofsroot/build-id"

// wipingSuffix names a layer being emptied by ofs-reset (DIR.wiping):
// it is renamed first, so a power cut during the removal leaves a fresh
// layer plus leftovers the next boot removes, never a half-emptied one.
const wipingSuffix = ".wiping"

// lowerRecord is LowerRecordFile. Root and Marker decide whether the
// layer fits a lower; the rest is for people.
type lowerRecord struct {
	Version int `json:"version"`
	// Root is the root filesystem's identity: "UUID=..." (or
	// "PARTUUID=..." for a filesystem without one, as squashfs).
	Root string `json:"root"`
	// Marker is the root's content: "build-id:ID" from BuildIDFile, else
	// "os-release:sha256:HEX" of its /etc/os-release.
	Marker string `json:"marker"`
	// Device and MadeAt say where and when the layer was made;
	// MadeBy is the init's version.
	Device string `json:"device,omitempty"`
	MadeAt string `json:"made_at,omitempty"`
	MadeBy string `json:"made_by,omitempty"`
}

func (r lowerRecord) String() string { return r.Root + " " + r.Marker }

// sameLower says whether a layer recorded on r may go over the lower o.
func (r lowerRecord) sameLower(o lowerRecord) bool {
	return r.Root == o.Root && r.Marker == o.Marker
}

// maxLowerRecord caps what is read of a layer's record.
const maxLowerRecord = 4 << 10

// parseLowerRecord reads a layer's record; one without a root or a
// marker is an error (the layer cannot be shown to fit).
func parseLowerRecord(data []byte) (lowerRecord, error) {
	var r lowerRecord
	if len(data) > maxLowerRecord {
		return r, fmt.Errorf("%d bytes, more than a record has", len(data))
	}
	if err := smalljson.Unmarshal(data, &r); err != nil {
		return r, err
	}
	if r.Marker == "" {
		return r, errors.New("no marker of the lower")
	}
	return r, nil
}

// rootIdentity is the root filesystem's identity for the record.
func rootIdentity(d blockdev.Device) string {
	switch {
	case d.UUID != "":
		return "UUID=" + d.UUID
	case d.PartUUID != "":
		return "PARTUUID=" + d.PartUUID
	}
	return ""
}

// lowerMarker is the root's content marker: its build id when it has
// one (buildID non-nil), else a hash of its /etc/os-release (nil: the
// root has none, which is a marker too).
func lowerMarker(buildID, osRelease []byte) string {
	if id := cleanBuildID(buildID); id != "" {
		return "build-id:" + id
	}
	// sha256sum, not crypto/sha256, which would link Go's FIPS module
	// into the init; the same digest.
	sum := sha256sum.Sum([]byte("no /etc/os-release"))
	if osRelease != nil {
		sum = sha256sum.Sum([]byte("/etc/os-release\x00"), osRelease)
	}
	return fmt.Sprintf("os-release:sha256:%x", sum)
}

// cleanBuildID keeps the first line of a build id file, if it is short
// and printable; anything else is no build id.
func cleanBuildID(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSpace(line)
	if line == "" || len(line) > 128 {
		return ""
	}
	for _, r := range line {
		if r <= 0x20 || r >= 0x7f {
			return ""
		}
	}
	return line
}

// setAsideName is the name a layer folder dir is renamed to when it is
// set aside: dir.YYYYMMDD-HHMMSS (UTC) when the clock is set, else
// dir.set-aside.N (a board without a real-time clock starts in 1970),
// with .N added while the name is taken.
func setAsideName(dir string, now time.Time, taken func(string) bool) string {
	if now.Year() >= 2020 {
		base := dir + "." + now.UTC().Format("20060102-150405")
		name := base
		for n := 2; taken(name); n++ {
			name = fmt.Sprintf("%s.%d", base, n)
		}
		return name
	}
	for n := 1; ; n++ {
		if name := fmt.Sprintf("%s.set-aside.%d", dir, n); !taken(name) {
			return name
		}
	}
}
