package bootlab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// SystemdSuite is the Debian release of the systemd test root.
const SystemdSuite = "bookworm"

// ProbeService is the unit that runs the probe in the systemd test root.
const ProbeService = "ofsroot-probe.service"

// probeUnit runs the probe once the system has reached multi-user.target
// and lets it power the machine off (tests/probe/systemd.go).
const probeUnit = `[Unit]
Description=ofsroot boot-test probe: reports the booted system, then powers off
After=multi-user.target

[Service]
Type=oneshot
Environment=OFSROOT_PROBE_SERVICE=1
ExecStart=/usr/local/sbin/ofsroot-probe
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
`

// SystemdImage returns an ext4 image of a Debian root that boots systemd:
// debootstrap --variant=minbase with systemd-sysv and udev (cached, see
// Debootstrap; udev because systemd mounts an fstab line of a block
// device only once udev has made its device unit), the probe installed as
// ProbeService, /etc/fstab naming the root by its UUID, and the same
// label and UUID as the probe root, so that every root= word the tests
// use works on both. It is built once per Setup, under Work, and never
// changed: boot it through Run, which boots a copy.
//
// Only the host's architecture is offered: a foreign one would need
// qemu-user for debootstrap's second stage, too slow for the suite.
//
// Side effects: runs debootstrap (once per cache), cp, mkfs.ext4.
func (s *Setup) SystemdImage() (string, error) {
	if s.systemd == nil {
		return "", fmt.Errorf("the lab for %s was not made by NewSetup", s.Board.Name)
	}
	s.systemd.once.Do(func() {
		s.systemd.image, s.systemd.err = s.buildSystemdImage("systemd-udev-root", "systemd-sysv", "udev")
	})
	return s.systemd.image, s.systemd.err
}

type systemdRoot struct {
	once  sync.Once
	image string
	err   error
}

// buildSystemdImage makes the image name.ext4 from a debootstrap with
// the packages include.
func (s *Setup) buildSystemdImage(name string, include ...string) (string, error) {
	if s.Board.GOARCH != runtime.GOARCH {
		return "", fmt.Errorf("a systemd root for %s (%s) needs qemu-user on this %s host; only %s boards get one", s.Board.Name, s.Board.DebianArch, runtime.GOARCH, runtime.GOARCH)
	}
	if s.Cache == "" {
		return "", fmt.Errorf("the lab for %s has no cache folder (made by NewSetup)", s.Board.Name)
	}
	base, err := Debootstrap(s.Cache, SystemdSuite, s.Board.DebianArch, include...)
	if err != nil {
		return "", err
	}
	tree := filepath.Join(s.Work, name)
	os.RemoveAll(tree)
	if out, err := exec.Command("cp", "-a", base, tree).CombinedOutput(); err != nil {
		return "", fmt.Errorf("cp -a %s %s: %v: %s", base, tree, err, out)
	}
	files := map[string]string{
		"etc/fstab":                          "# /etc/fstab of the ofsroot systemd test root\nUUID=" + RootUUID + " / ext4 defaults,errors=remount-ro 0 1\n",
		"etc/hostname":                       "ofsroot-systemd\n",
		"etc/systemd/system/" + ProbeService: probeUnit,
		// Unit status lines would cut the probe's report lines.
		"etc/systemd/system.conf.d/ofsroot-test.conf": "[Manager]\nShowStatus=no\n",
	}
	for name, content := range files {
		p := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	if err := copyFile(s.Probe, filepath.Join(tree, "usr/local/sbin/ofsroot-probe"), 0o755); err != nil {
		return "", err
	}
	// A login prompt on the console would cut the probe's report
	// lines (with udev, the serial console's device unit appears and
	// its getty starts): masked.
	for _, unit := range []string{"serial-getty@.service"} {
		if err := os.Symlink("/dev/null", filepath.Join(tree, "etc/systemd/system", unit)); err != nil {
			return "", err
		}
	}
	wants := filepath.Join(tree, "etc/systemd/system/multi-user.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		return "", err
	}
	if err := os.Symlink("/etc/systemd/system/"+ProbeService, filepath.Join(wants, ProbeService)); err != nil {
		return "", err
	}
	size, err := treeBytes(tree)
	if err != nil {
		return "", err
	}
	// Room for the journal, ext4's metadata and what a test writes.
	size = (size*3/2 + 128<<20) &^ (1<<20 - 1)
	img := filepath.Join(s.Work, name+".ext4")
	if err := MakeExt4(Ext4{Dir: tree, SizeBytes: size, Label: RootLabel, UUID: RootUUID}, img); err != nil {
		return "", err
	}
	return img, nil
}

// treeBytes is the space a folder's files take, as du counts it.
func treeBytes(dir string) (int64, error) {
	out, err := exec.Command("du", "-sb", dir).Output()
	if err != nil {
		return 0, fmt.Errorf("du -sb %s: %v", dir, err)
	}
	var n int64
	if _, err := fmt.Sscan(strings.Fields(string(out))[0], &n); err != nil {
		return 0, fmt.Errorf("du -sb %s: %q", dir, out)
	}
	return n, nil
}
