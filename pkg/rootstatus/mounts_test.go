package rootstatus

import (
	"os"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
)

func TestEvaluateMounts(t *testing.T) {
	st := &bootstatus.Status{Mode: bootstatus.Protected, Mounts: []bootstatus.Mount{
		{Mount: "/boot", Spec: "LABEL=boot", Policy: "protect", From: "ofs-mounts=", Result: "protected"},
		{Mount: "/var/log", Spec: "LABEL=log", Policy: "ro", From: "ofsroot.conf", Result: "read-only"},
		{Mount: "/data", Spec: "LABEL=data", Policy: "keep", From: "default", Result: "kept"},
	}}
	good := miProtected + "40 30 0:30 / /boot rw,relatime - overlay ofsroot-boot rw,lowerdir=/run/ofsroot/mounts/boot\n41 30 254:19 / /var/log ro,relatime - ext4 /dev/vdb3 ro\n42 30 254:18 / /data rw,relatime - ext4 /dev/vdb2 rw\n"
	bad := miProtected + "40 30 0:30 / /boot rw,relatime - overlay ofsroot-boot rw\n43 40 254:17 / /boot rw,relatime - ext4 /dev/vdb1 rw\n41 30 254:19 / /var/log rw,relatime - ext4 /dev/vdb3 rw\n"
	for _, c := range []struct {
		name     string
		mi       string
		warnings []string
	}{
		{"as booted", good, nil},
		{"mounted over, remounted rw", bad, []string{"/boot was protected at boot, but its overlay is not on top now (ext4 mounted there)", "/var/log was made read-only in fstab, but is mounted read-write now"}},
		{"protected one unmounted", miProtected, []string{"/boot was protected at boot, but its overlay is not on top now (nothing mounted there)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := Evaluate(Inputs{Mountinfo: strings.NewReader(c.mi), Status: st, StatusErr: os.ErrNotExist, StatusFile: "/run/ofsroot/status.json", Statfs: statfs})
			if err != nil {
				t.Fatal(err)
			}
			matchAll(t, "warnings", r.Warnings, c.warnings)
			if len(r.Mounts) != 3 {
				t.Fatalf("mounts %+v", r.Mounts)
			}
			var b strings.Builder
			r.Text(&b)
			for _, s := range []string{"mount:      /boot protected (protect from ofs-mounts=)\n", "mount:      /var/log read-only (ro from ofsroot.conf)\n"} {
				if !strings.Contains(b.String(), s) {
					t.Errorf("text lacks %q:\n%s", s, b.String())
				}
			}
			if strings.Contains(b.String(), "/data") {
				t.Errorf("a kept mount is listed:\n%s", b.String())
			}
		})
	}
}
