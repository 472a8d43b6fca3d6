package debpkg

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ofsroot/ofsroot/internal/testenv"
)

func need(t *testing.T, prog string) {
	t.Helper()
	testenv.NeedTools(t, prog)
}

// fixture writes a package tree with every kind of entry dpkg-deb
// packs: folders of unusual modes, set-uid files, empty files, relative,
// absolute and dangling symbolic links, and a hard link.
func fixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mkdir := func(name string, mode fs.FileMode) {
		must(os.MkdirAll(filepath.Join(dir, name), 0o755))
		must(os.Chmod(filepath.Join(dir, name), mode))
	}
	file := func(name, content string, mode fs.FileMode) {
		p := filepath.Join(dir, name)
		must(os.WriteFile(p, []byte(content), 0o600))
		must(os.Chmod(p, mode))
		stamp := time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC)
		must(os.Chtimes(p, stamp, stamp))
	}
	mkdir("DEBIAN", 0o755)
	file("DEBIAN/control", "Package: ofsroot-debpkg-test\nVersion: 1.0\nArchitecture: all\nMaintainer: ofsroot <test@example.org>\nDescription: debpkg test fixture\n", 0o644)
	mkdir("usr/bin", 0o755)
	mkdir("usr/lib/x", 0o755)
	mkdir("etc/secret", 0o700)
	mkdir("srv/readonly", 0o755)
	file("usr/bin/tool", "#!/bin/sh\necho hi\n", 0o755)
	file("usr/bin/suid", "suid", 0o4755)
	file("usr/lib/x/data", strings.Repeat("ofsroot ", 10000), 0o644)
	file("usr/lib/x/empty", "", 0o644)
	file("etc/secret/key", "k", 0o600)
	file("srv/readonly/f", "r", 0o444)
	must(os.Chmod(filepath.Join(dir, "srv/readonly"), 0o555))
	must(os.Symlink("tool", filepath.Join(dir, "usr/bin/tool-link")))
	must(os.Symlink("/etc/secret/key", filepath.Join(dir, "usr/lib/x/abs-link")))
	must(os.Symlink("../nowhere", filepath.Join(dir, "usr/lib/x/dangling")))
	must(os.Link(filepath.Join(dir, "usr/bin/tool"), filepath.Join(dir, "usr/bin/tool-hard")))
	return dir
}

// entryInfo is what a tree comparison looks at for one name.
type entryInfo struct {
	kind   string
	mode   fs.FileMode
	size   int64
	sum    string
	link   string
	mtime  int64
	inode  uint64
	nlinks uint64
}

func scan(t *testing.T, root string) map[string]entryInfo {
	t.Helper()
	out := map[string]entryInfo{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entryInfo{mode: fi.Mode(), inode: st.Ino, nlinks: uint64(st.Nlink), mtime: fi.ModTime().Unix()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			e.kind = "symlink"
			e.link, err = os.Readlink(p)
			e.mtime = 0 // neither tool promises symlink times
		case fi.IsDir():
			e.kind = "dir"
		default:
			e.kind = "file"
			e.size = fi.Size()
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(data)
			e.sum = hex.EncodeToString(s[:])
		}
		out[rel] = e
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compareTrees fails the test where got differs from want (dpkg -x's).
func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	w, g := scan(t, want), scan(t, got)
	var names []string
	for n := range w {
		names = append(names, n)
	}
	for n := range g {
		if _, ok := w[n]; !ok {
			t.Errorf("%s: extracted but dpkg -x has no such entry", n)
		}
	}
	sort.Strings(names)
	// GNU tar under dpkg -x creates links after restoring the times of
	// their folders, so those folders carry the time of extraction;
	// Extract gives them the packaged time. Their times are not compared.
	linkParents := map[string]bool{}
	for n, e := range w {
		if e.kind == "symlink" || e.nlinks > 1 && e.kind == "file" {
			linkParents[filepath.Dir(n)] = true
		}
	}
	inodes := map[uint64]uint64{} // want inode -> got inode
	for _, n := range names {
		we, ge := w[n], g[n]
		if _, ok := g[n]; !ok {
			t.Errorf("%s: missing (dpkg -x has a %s)", n, we.kind)
			continue
		}
		if we.kind != ge.kind || we.mode != ge.mode || we.size != ge.size || we.sum != ge.sum || we.link != ge.link || we.nlinks != ge.nlinks {
			t.Errorf("%s: got %s %v size %d links %d -> %q, dpkg -x has %s %v size %d links %d -> %q",
				n, ge.kind, ge.mode, ge.size, ge.nlinks, ge.link, we.kind, we.mode, we.size, we.nlinks, we.link)
		}
		if we.mtime != ge.mtime && !(we.kind == "dir" && linkParents[n]) {
			t.Errorf("%s: mtime %v, dpkg -x has %v", n, time.Unix(ge.mtime, 0), time.Unix(we.mtime, 0))
		}
		if we.kind == "file" && we.nlinks > 1 {
			if prev, ok := inodes[we.inode]; ok && prev != ge.inode {
				t.Errorf("%s: hard link not kept", n)
			}
			inodes[we.inode] = ge.inode
		}
	}
}

func TestExtractMatchesDpkg(t *testing.T) {
	need(t, "dpkg-deb")
	testenv.NeedRoot(t, "the fixture has a read-only folder (0555) with a file in it, which only root can extract over again or clean up, as with dpkg -x; and dpkg -x sets owners only as root")
	src := fixture(t)
	for _, comp := range []string{"xz", "zstd", "gzip", "none"} {
		t.Run(comp, func(t *testing.T) {
			tmp := t.TempDir()
			deb := filepath.Join(tmp, "test.deb")
			out, err := exec.Command("dpkg-deb", "--root-owner-group", "-Z"+comp, "--build", src, deb).CombinedOutput()
			if err != nil {
				t.Fatalf("dpkg-deb -Z%s: %v\n%s", comp, err, out)
			}
			want, got := filepath.Join(tmp, "want"), filepath.Join(tmp, "got")
			if out, err := exec.Command("dpkg", "-x", deb, want).CombinedOutput(); err != nil {
				t.Fatalf("dpkg -x: %v\n%s", err, out)
			}
			if err := Extract(deb, got); err != nil {
				t.Fatal(err)
			}
			compareTrees(t, want, got)
			// Extracting again over the first copy replaces it.
			if err := Extract(deb, got); err != nil {
				t.Fatalf("second extraction over the first: %v", err)
			}
			compareTrees(t, want, got)
		})
	}
}

func TestExtractFiltered(t *testing.T) {
	need(t, "dpkg-deb")
	testenv.NeedRoot(t, "the fixture has a read-only folder (0555) with a file in it, which only root can extract over again or clean up, as with dpkg -x; and dpkg -x sets owners only as root")
	src := fixture(t)
	tmp := t.TempDir()
	deb := filepath.Join(tmp, "test.deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", src, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, out)
	}
	dest := filepath.Join(tmp, "got")
	var asked []string
	err := ExtractFiltered(deb, dest, func(name string) bool {
		asked = append(asked, name)
		return strings.HasPrefix(name, "srv/")
	})
	if err != nil {
		t.Fatal(err)
	}
	got := scan(t, dest)
	var names []string
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	if want := []string{".", "srv", "srv/readonly", "srv/readonly/f"}; strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("entries %q, want %q", names, want)
	}
	if m := got["srv/readonly"].mode.Perm(); m != 0o555 {
		t.Errorf("srv/readonly mode %v, want the packaged 0555", m)
	}
	for _, n := range asked {
		if strings.HasPrefix(n, "./") || strings.HasPrefix(n, "/") {
			t.Errorf("keep was given an unclean name %q", n)
		}
	}
}

// tarEntry is one entry of a hand-made data.tar.
type tarEntry struct {
	name, link, body string
	typ              byte
}

// handDeb writes a .deb whose data member (named member) holds entries,
// bypassing dpkg-deb, which would refuse the hostile ones.
func handDeb(t *testing.T, member string, entries []tarEntry) string {
	t.Helper()
	var data bytes.Buffer
	var w io.Writer = &data
	var gz *gzip.Writer
	if strings.HasSuffix(member, ".gz") {
		gz = gzip.NewWriter(&data)
		w = gz
	}
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			io.WriteString(tw, e.body)
		}
	}
	tw.Close()
	if gz != nil {
		gz.Close()
	}
	var ar bytes.Buffer
	ar.WriteString(arMagic)
	addMember := func(name string, body []byte) {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, 0, 0, 0, "100644", len(body))
		ar.Write(body)
		if len(body)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	addMember("debian-binary", []byte("2.0\n"))
	addMember("control.tar.gz", []byte("ignored, odd length"))
	addMember(member, data.Bytes())
	p := filepath.Join(t.TempDir(), "hand.deb")
	if err := os.WriteFile(p, ar.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExtractHandMade(t *testing.T) {
	deb := handDeb(t, "data.tar.gz", []tarEntry{
		{name: "./", typ: tar.TypeDir},
		{name: "./a/", typ: tar.TypeDir},
		{name: "./a/f", typ: tar.TypeReg, body: "hello"},
		{name: "./a/l", typ: tar.TypeSymlink, link: "f"},
		{name: "./b/deep/g", typ: tar.TypeReg, body: "implicit parents"},
		{name: "./a/h", typ: tar.TypeLink, link: "./a/f"},
	})
	dest := t.TempDir()
	if err := Extract(deb, dest); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a/f": "hello", "a/l": "hello", "a/h": "hello", "b/deep/g": "implicit parents"} {
		got, err := os.ReadFile(filepath.Join(dest, name))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	// The uncompressed form reads too.
	plain := handDeb(t, "data.tar", []tarEntry{{name: "./x", typ: tar.TypeReg, body: "plain"}})
	if err := Extract(plain, t.TempDir()); err != nil {
		t.Errorf("data.tar without compression: %v", err)
	}
}

func TestExtractRefusesEscapes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []tarEntry
		errHas  string
	}{
		{"dotdot", []tarEntry{{name: "./../evil", typ: tar.TypeReg, body: "x"}}, "leaves the package root"},
		{"dotdot-inside", []tarEntry{{name: "./a/../../evil", typ: tar.TypeReg, body: "x"}}, "leaves the package root"},
		{"absolute", []tarEntry{{name: "/evil", typ: tar.TypeReg, body: "x"}}, "absolute path"},
		{"through-absolute-symlink", []tarEntry{
			{name: "./esc", typ: tar.TypeSymlink, link: "OUTSIDE"},
			{name: "./esc/evil", typ: tar.TypeReg, body: "x"},
		}, "evil"},
		{"through-relative-symlink", []tarEntry{
			{name: "./up", typ: tar.TypeSymlink, link: ".."},
			{name: "./up/evil", typ: tar.TypeReg, body: "x"},
		}, "evil"},
		{"hardlink-out", []tarEntry{{name: "./h", typ: tar.TypeLink, link: "../../etc/passwd"}}, "leaves the package root"},
		{"device", []tarEntry{{name: "./null", typ: tar.TypeChar}}, "not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := range tc.entries {
				tc.entries[i].link = strings.ReplaceAll(tc.entries[i].link, "OUTSIDE", outside)
			}
			deb := handDeb(t, "data.tar.gz", tc.entries)
			dest := filepath.Join(base, "dest")
			err := Extract(deb, dest)
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("Extract: %v, want an error mentioning %q", err, tc.errHas)
			}
			for _, p := range []string{filepath.Join(outside, "evil"), filepath.Join(base, "evil")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s was written outside the destination", p)
				}
			}
		})
	}
}

func TestExtractErrors(t *testing.T) {
	dir := t.TempDir()
	notDeb := filepath.Join(dir, "not.deb")
	os.WriteFile(notDeb, []byte("hello, not an archive"), 0o644)
	if err := Extract(notDeb, t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a Debian package") {
		t.Errorf("plain file: %v", err)
	}
	if err := Extract(filepath.Join(dir, "missing.deb"), t.TempDir()); err == nil || !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
	lzma := handDeb(t, "data.tar.lzma", nil)
	if err := Extract(lzma, t.TempDir()); err == nil || !strings.Contains(err.Error(), "unsupported compression") {
		t.Errorf("data.tar.lzma: %v", err)
	}
	var ar bytes.Buffer
	ar.WriteString(arMagic)
	fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", "debian-binary", 0, 0, 0, "100644", 4)
	ar.WriteString("2.0\n")
	noData := filepath.Join(dir, "nodata.deb")
	os.WriteFile(noData, ar.Bytes(), 0o644)
	if err := Extract(noData, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no data.tar member") {
		t.Errorf("no data member: %v", err)
	}
}

func TestCleanName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{"./", ".", false},
		{".", ".", false},
		{"./usr/bin/x", "usr/bin/x", false},
		{"usr//lib/./x/", "usr/lib/x", false},
		{"./a/..b/c", "a/..b/c", false},
		{"../x", "", true},
		{"./a/../x", "", true},
		{"/etc/passwd", "", true},
	} {
		got, err := CleanName(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("CleanName(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}
