package overlaydiff

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(content), mode))
	must(t, os.Chmod(p, mode))
}

// layers mounts a tmpfs lower and a tmpfs upper (with work) and returns
// their folders; fill populates the lower before the overlay is mounted.
func layers(t *testing.T, fill func(lower string)) (lower, upper, merged string) {
	t.Helper()
	mountfstest.PrivateNamespace(t)
	dir := t.TempDir()
	lower, rw, merged := filepath.Join(dir, "lower"), filepath.Join(dir, "rw"), filepath.Join(dir, "merged")
	for _, d := range []string{lower, rw, merged} {
		must(t, os.Mkdir(d, 0o755))
		if d != merged {
			must(t, unix.Mount("tmpfs", d, "tmpfs", 0, "mode=0755"))
			t.Cleanup(func() { unix.Unmount(d, unix.MNT_DETACH) })
		}
	}
	fill(lower)
	upper, work := filepath.Join(rw, "upper"), filepath.Join(rw, "work")
	must(t, os.Mkdir(upper, 0o755))
	must(t, os.Mkdir(work, 0o755))
	must(t, unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work))
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	return lower, upper, merged
}

func baseTree(t *testing.T, l string) {
	write(t, l+"/etc/fstab", "old fstab\n", 0o644)
	write(t, l+"/etc/hostname", "box\n", 0o644)
	write(t, l+"/etc/same", "same\n", 0o644)
	write(t, l+"/etc/gone", "bye\n", 0o644)
	write(t, l+"/etc/attr", "x\n", 0o644)
	write(t, l+"/bin/tool", "#!/bin/sh\n", 0o755)
	write(t, l+"/var/lib/app/a", "a\n", 0o644)
	write(t, l+"/var/lib/app/b", "b\n", 0o644)
	write(t, l+"/was-file", "f\n", 0o644)
	write(t, l+"/same-size", "aaaa\n", 0o644)
	must(t, os.Symlink("/etc/hostname", l+"/link"))
	must(t, os.MkdirAll(l+"/old/dir/deep", 0o755))
}

// TestDiffAfterScriptedChanges makes every kind of change through a real
// overlay and checks the exact list.
func TestDiffAfterScriptedChanges(t *testing.T) {
	lower, upper, m := layers(t, func(l string) { baseTree(t, l) })

	write(t, m+"/new.txt", "new\n", 0o644)                              // added
	write(t, m+"/etc/fstab", "new fstab\n", 0o644)                      // content
	write(t, m+"/same-size", "bbbb\n", 0o644)                           // content, same size
	must(t, os.Chmod(m+"/etc/hostname", 0o600))                         // mode
	must(t, os.Chown(m+"/bin/tool", 1000, 1000))                        // owner
	must(t, unix.Lsetxattr(m+"/etc/attr", "user.note", []byte("v"), 0)) // xattrs
	must(t, os.Remove(m+"/link"))                                       // target
	must(t, os.Symlink("/etc/fstab", m+"/link"))
	must(t, os.Chtimes(m+"/etc/same", time.Unix(1, 0), time.Unix(1, 0))) // copied up, unchanged
	must(t, os.Remove(m+"/etc/gone"))                                    // deleted (chardev whiteout)
	must(t, os.RemoveAll(m+"/var/lib/app"))                              // opaque folder
	write(t, m+"/var/lib/app/b", "b2\n", 0o644)
	write(t, m+"/var/lib/app/c", "c\n", 0o644)
	write(t, m+"/newdir/sub/file", "x\n", 0o644) // added, recursively
	must(t, os.Remove(m+"/was-file"))            // type
	must(t, os.Mkdir(m+"/was-file", 0o755))
	write(t, m+"/was-file/inside", "i\n", 0o644)
	must(t, os.RemoveAll(m+"/old")) // a deleted tree is one whiteout

	got, err := Diff(lower, upper, Options{})
	must(t, err)
	want := []string{
		"M /bin/tool (owner)",
		"M /etc/attr (xattrs)",
		"M /etc/fstab (content)",
		"D /etc/gone",
		"M /etc/hostname (mode)",
		"M /link (target)",
		"A /new.txt",
		"A /newdir/",
		"A /newdir/sub/",
		"A /newdir/sub/file",
		"D /old/",
		"M /same-size (content)",
		"O /var/lib/app/",
		"D /var/lib/app/a",
		"M /var/lib/app/b (content)",
		"A /var/lib/app/c",
		"M /was-file/ (type)",
		"A /was-file/inside",
	}
	check(t, got, want)

	// Narrowed to paths.
	got, err = Diff(lower, upper, Options{Paths: []string{"/var/lib", "etc/fstab"}})
	must(t, err)
	check(t, got, []string{"M /etc/fstab (content)", "O /var/lib/app/", "D /var/lib/app/a", "M /var/lib/app/b (content)", "A /var/lib/app/c"})
	// Ignored paths.
	got, err = Diff(lower, upper, Options{Paths: []string{"/newdir", "/new.txt"}, Ignore: []string{"/newdir/sub"}})
	must(t, err)
	check(t, got, []string{"A /new.txt", "A /newdir/"})

	// JSON keeps the fields.
	b, err := json.Marshal(got[:1])
	must(t, err)
	if string(b) != `[{"path":"/new.txt","kind":"added","type":"file"}]` {
		t.Errorf("json: %s", b)
	}
	for _, c := range mustDiff(t, lower, upper, "/etc/gone") {
		if c.Whiteout != "chardev" {
			t.Errorf("%v: whiteout %q, want chardev", c, c.Whiteout)
		}
	}
}

func mustDiff(t *testing.T, lower, upper string, paths ...string) []Change {
	got, err := Diff(lower, upper, Options{Paths: paths})
	must(t, err)
	return got
}

// TestXattrWhiteout reads the xattr form of a whiteout and an opaque
// folder written by hand into an upper layer, with no overlay mounted.
func TestXattrWhiteout(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	dir := t.TempDir()
	lower, upper := dir+"/lower", dir+"/upper"
	for _, d := range []string{lower, upper} {
		must(t, os.Mkdir(d, 0o755))
		must(t, unix.Mount("tmpfs", d, "tmpfs", 0, "mode=0755")) // trusted.* xattrs
		t.Cleanup(func() { unix.Unmount(d, unix.MNT_DETACH) })
	}
	write(t, lower+"/a/x", "x\n", 0o644)
	write(t, lower+"/a/y", "y\n", 0o644)
	write(t, lower+"/d/keep", "k\n", 0o644)
	write(t, upper+"/a/x", "", 0o644)
	must(t, unix.Lsetxattr(upper+"/a/x", "trusted.overlay.whiteout", nil, 0))
	must(t, os.Mkdir(upper+"/d", 0o755))
	must(t, unix.Lsetxattr(upper+"/d", "trusted.overlay.opaque", []byte("y"), 0))
	// An overlay-private xattr alone is no change.
	must(t, unix.Lsetxattr(upper+"/a", "trusted.overlay.impure", []byte("y"), 0))
	// A whiteout with nothing under it deletes nothing.
	must(t, unix.Mknod(upper+"/nothing", unix.S_IFCHR|0o600, 0))

	got, err := Diff(lower, upper, Options{})
	must(t, err)
	check(t, got, []string{"D /a/x", "O /d/", "D /d/keep"})
	if got[0].Whiteout != "xattr" {
		t.Errorf("whiteout form %q, want xattr", got[0].Whiteout)
	}
}

func TestMissingLayer(t *testing.T) {
	_, err := Diff("/nonexistent-lower", t.TempDir(), Options{})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent-lower") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v", err)
	}
}

func TestLessAndUnder(t *testing.T) {
	paths := []string{"/a-b", "/a/b", "/a", "/"}
	want := []string{"/", "/a", "/a/b", "/a-b"}
	sortPaths(paths)
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("sorted %q, want %q", paths, want)
	}
	for _, c := range []struct {
		p, root string
		want    bool
	}{{"/a/b", "/a", true}, {"/a", "/a", true}, {"/ab", "/a", false}, {"/x", "/", true}, {"/", "/a", false}} {
		if Under(c.p, c.root) != c.want {
			t.Errorf("Under(%q, %q) != %v", c.p, c.root, c.want)
		}
	}
}

func sortPaths(p []string) {
	for i := range p {
		for j := i + 1; j < len(p); j++ {
			if Less(p[j], p[i]) {
				p[i], p[j] = p[j], p[i]
			}
		}
	}
}

func check(t *testing.T, got []Change, want []string) {
	t.Helper()
	var s []string
	for _, c := range got {
		s = append(s, c.String())
	}
	if strings.Join(s, "\n") != strings.Join(want, "\n") {
		t.Errorf("diff:\n%s\nwant:\n%s", strings.Join(s, "\n"), strings.Join(want, "\n"))
	}
}
