package grubenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	e := New()
	for _, kv := range [][2]string{{"overlayfs", "yes"}, {"ofs_size", "20"}, {"odd", "a\\b\nc=d"}, {"empty", ""}} {
		if err := e.Set(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	e.Set("overlayfs", "no") // keeps its place
	data, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := Header + Warning + "overlayfs=no\nofs_size=20\nodd=a\\\\b\\\nc=d\nempty=\n"
	if len(data) != DefaultSize || !bytes.HasPrefix(data, []byte(want)) || strings.Trim(string(data[len(want):]), "#") != "" {
		t.Fatalf("encoded %q", data)
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(back.Names(), ",") != "overlayfs,ofs_size,odd,empty" {
		t.Errorf("names %q", back.Names())
	}
	for _, n := range e.Names() {
		a, _ := e.Get(n)
		b, ok := back.Get(n)
		if !ok || a != b {
			t.Errorf("%s: %q, read back %q", n, a, b)
		}
	}
	back.Delete("odd")
	back.Delete("never")
	if _, ok := back.Get("odd"); ok || len(back.Names()) != 3 {
		t.Errorf("after Delete: %q", back.Names())
	}
}

func TestErrors(t *testing.T) {
	for _, in := range []string{"", "# GRUB Environment\n", Header + "novalue\n####", Header + "=x\n", Header + "a=unterminated"} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
	e := New()
	for _, n := range []string{"", "ofs-size", "9x", "a b", "a=b"} {
		if err := e.Set(n, "v"); err == nil {
			t.Errorf("Set(%q) accepted", n)
		}
	}
	e.Set("big", strings.Repeat("x", DefaultSize))
	if _, err := e.Encode(); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("a block too small: %v", err)
	}
}

// TestAgainstGrubEditenv: what grub-editenv (Debian's grub-common)
// writes, Parse reads; what WriteFile writes, grub-editenv reads.
func TestAgainstGrubEditenv(t *testing.T) {
	if _, err := exec.LookPath("grub-editenv"); err != nil {
		t.Fatal("grub-editenv is not installed: run scripts/setup-host.sh (grub-common)")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "grubenv")
	editenv := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("grub-editenv", append([]string{p}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("grub-editenv %q: %v\n%s", args, err, out)
		}
		return string(out)
	}
	editenv("create")
	editenv("set", "overlayfs=yes", "ofs_size=20", "odd=a\\b\nc")
	e, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := e.Get("odd"); v != "a\\b\nc" || e.Size() != DefaultSize {
		t.Errorf("odd=%q, size %d", v, e.Size())
	}
	if v, _ := e.Get("ofs_size"); v != "20" {
		t.Errorf("ofs_size=%q", v)
	}
	orig, _ := os.ReadFile(p)
	if again, _ := e.Encode(); !bytes.Equal(again, orig) {
		t.Errorf("re-encoding grub-editenv's block changes it:\n%q\n%q", orig, again)
	}
	e.Delete("ofs_size")
	e.Set("overlayfs", "no")
	e.Set("ofs_once", "1")
	if err := WriteFile(p, e); err != nil {
		t.Fatal(err)
	}
	if got := editenv("list"); got != "overlayfs=no\nodd=a\\b\nc\nofs_once=1\n" {
		t.Errorf("grub-editenv list after WriteFile: %q", got)
	}
	editenv("unset", "odd")
	e, err = ReadFile(p)
	if err != nil || strings.Join(e.Names(), ",") != "overlayfs,ofs_once" {
		t.Errorf("after grub-editenv unset: %v %v", e, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(Header + "a=b\n####"))
	f.Add([]byte(Header + "odd=a\\\\b\\\nc\n#"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse(data)
		if err != nil {
			return
		}
		out, err := e.Encode()
		if err != nil {
			return
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out, err)
		}
		for _, n := range e.Names() {
			a, _ := e.Get(n)
			if b, _ := back.Get(n); a != b {
				t.Fatalf("%s: %q then %q", n, a, b)
			}
		}
	})
}
