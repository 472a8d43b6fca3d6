package diskimage

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// BuildIDPath is where an image's root carries its build id: the init
// binds a persistent layer (ofs-upper=) to it, so that a layer made on
// one image is set aside, not merged, when another is flashed.
const BuildIDPath = "etc/ofsroot/build-id"

// buildID is the id of the image whose identifiers come from seed (the
// tree's digest, kernel, board, layout, epoch; random without an epoch):
// the same inputs give the same id, other contents another.
func buildID(seed string) string {
	return fmt.Sprintf("%x", sha256.Sum256([]byte("build-id "+seed)))[:32]
}

// buildIDPlan says what adding the build id to tree takes: the folders
// to make (etc, etc/ofsroot, those missing), or why it is left out (the
// tree has its own build id, which is kept; or etc is not a folder).
func buildIDPlan(tree string) (mkdirs []string, keep string, err error) {
	if _, err := os.Lstat(filepath.Join(tree, BuildIDPath)); err == nil {
		return nil, "the root has its own /" + BuildIDPath + ": kept", nil
	}
	for _, d := range []string{"etc", "etc/ofsroot"} {
		fi, err := os.Lstat(filepath.Join(tree, d))
		switch {
		case errors.Is(err, os.ErrNotExist):
			mkdirs = append(mkdirs, d)
		case err != nil:
			return nil, "", err
		case !fi.IsDir():
			return nil, fmt.Sprintf("/%s in the root is not a folder: no /%s", d, BuildIDPath), nil
		}
	}
	return mkdirs, "", nil
}

// squashfsBuildID is mksquashfs's pseudo-file definitions adding the
// build id (and its missing folders) to the squashfs.
func squashfsBuildID(mkdirs []string, id string) []string {
	var args []string
	for _, d := range mkdirs {
		args = append(args, "-p", d+" d 755 0 0")
	}
	return append(args, "-p", BuildIDPath+" f 644 0 0 echo "+id)
}

// ext4BuildID writes the build id (and its missing folders) into the ext4
// filesystem offset bytes into image, with debugfs, owned by root and
// stamped with epoch when it is set.
func ext4BuildID(image string, offset int64, mkdirs []string, id string, epoch int64) error {
	tmp, err := os.CreateTemp("", "ofsroot-build-id-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(id + "\n"); err != nil {
		tmp.Close()
		return err
	}
	tmp.Close()
	var cmds strings.Builder
	for _, d := range mkdirs {
		fmt.Fprintf(&cmds, "mkdir /%s\nsif /%s mode 040755\n", d, d)
	}
	fmt.Fprintf(&cmds, "write %s /%s\nsif /%s mode 0100644\n", tmp.Name(), BuildIDPath, BuildIDPath)
	for _, p := range append(append([]string{}, mkdirs...), BuildIDPath) {
		fmt.Fprintf(&cmds, "sif /%s uid 0\nsif /%s gid 0\n", p, p)
		if epoch > 0 {
			for _, f := range []string{"atime", "mtime", "ctime", "crtime"} {
				fmt.Fprintf(&cmds, "sif /%s %s @%d\n", p, f, epoch)
			}
		}
	}
	return debugfsWrite(image, offset, epoch, cmds.String())
}
