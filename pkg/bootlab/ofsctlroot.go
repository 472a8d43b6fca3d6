package bootlab

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// OfsctlPath is where the ofsctl test root carries the on-device tool.
const OfsctlPath = "/usr/bin/ofsctl"

// OfsctlRoot makes, in dir, the test root with ofsctl in it: the same
// tree as WriteRootTree (the probe as /sbin/init) plus cmd/ofsctl built
// static for the board at OfsctlPath, as a bare ext4 image of
// RootFSBytes. It returns the image's path. The probe's probe.run= words
// then run ofsctl inside the booted guest.
//
// Side effects: runs go build, mkfs.ext4 and debugfs.
func (s *Setup) OfsctlRoot(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "ofsctl")
	if err := GoBuild(s.Board, "./cmd/ofsctl", bin); err != nil {
		return "", err
	}
	tree := filepath.Join(dir, "root")
	os.RemoveAll(tree)
	if err := WriteRootTree(tree, s.Probe); err != nil {
		return "", err
	}
	dst := filepath.Join(tree, OfsctlPath)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	if err := copyFile(bin, dst, 0o755); err != nil {
		return "", err
	}
	stamp := time.Unix(SourceDateEpoch, 0)
	for _, p := range []string{dst, filepath.Dir(dst), filepath.Dir(filepath.Dir(dst))} {
		if err := os.Chtimes(p, stamp, stamp); err != nil {
			return "", err
		}
	}
	img := filepath.Join(dir, "root-ofsctl.ext4")
	if err := MakeExt4(Ext4{Dir: tree, SizeBytes: RootFSBytes, Label: RootLabel, UUID: RootUUID}, img); err != nil {
		return "", fmt.Errorf("ofsctl root image: %w", err)
	}
	return img, nil
}
