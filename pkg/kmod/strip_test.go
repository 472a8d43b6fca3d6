package kmod

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

func signed(body, signer, keyID, sig []byte) []byte {
	info := make([]byte, signatureInfoLen)
	info[3], info[4] = byte(len(signer)), byte(len(keyID))
	binary.BigEndian.PutUint32(info[8:], uint32(len(sig)))
	out := append(append([]byte(nil), body...), signer...)
	out = append(append(out, keyID...), sig...)
	return append(append(out, info...), SignatureMagic...)
}

func TestStripSignature(t *testing.T) {
	body := []byte("\x7fELF module body")
	got, had, err := StripSignature(signed(body, nil, nil, bytes.Repeat([]byte{0x30}, 400)))
	if err != nil || !had || !bytes.Equal(got, body) {
		t.Errorf("PKCS#7 signature: %q %v %v", got, had, err)
	}
	got, had, err = StripSignature(signed(body, []byte("signer"), []byte("kid"), []byte("sig")))
	if err != nil || !had || !bytes.Equal(got, body) {
		t.Errorf("signer and key id: %q %v %v", got, had, err)
	}
	got, had, err = StripSignature(body)
	if err != nil || had || !bytes.Equal(got, body) {
		t.Errorf("unsigned: %q %v %v", got, had, err)
	}
	for _, bad := range [][]byte{
		[]byte(SignatureMagic),
		signed(body, nil, nil, []byte("s"))[len(body):], // sig_len says 1, but no room for it... see below
	} {
		bad = append([]byte(nil), bad...)
		if len(bad) > len(SignatureMagic) {
			binary.BigEndian.PutUint32(bad[len(bad)-len(SignatureMagic)-4:], 1<<20) // claims 1 MiB
		}
		if _, _, err := StripSignature(bad); err == nil {
			t.Errorf("truncated signature %q accepted", bad)
		}
	}
}

// realModule finds a module of the cached amd64 Debian kernel.
func realModule(t *testing.T, rel string) []byte {
	t.Helper()
	cache := os.Getenv("OFSROOT_CACHE")
	if cache == "" {
		cache = "../../.cache"
	}
	m, _ := filepath.Glob(filepath.Join(cache, "linux-image-*-amd64/lib/modules/*/kernel", rel))
	if len(m) == 0 {
		t.Skipf("no Debian amd64 kernel in %s (OFSROOT_CACHE; the boot tests fetch one)", cache)
	}
	data, err := os.ReadFile(m[0])
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestStripRealModule(t *testing.T) {
	orig := realModule(t, "fs/ext4/ext4.ko")
	data, had, err := StripSignature(orig)
	if err != nil || !had {
		t.Fatalf("Debian signs every module: %v %v", had, err)
	}
	out, had, err := StripBTF(data)
	if err != nil || !had {
		t.Fatalf("amd64 modules carry BTF: %v %v", had, err)
	}
	if len(out) != len(data) {
		t.Errorf("size changed: %d -> %d", len(data), len(out))
	}
	f, err := elf.NewFile(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := elf.NewFile(bytes.NewReader(data))
	if len(f.Sections) != len(before.Sections) {
		t.Errorf("sections %d, were %d", len(f.Sections), len(before.Sections))
	}
	for _, s := range f.Sections {
		if s.Name == ".BTF" {
			t.Error(".BTF still named")
		}
	}
	mi := f.Section(".modinfo")
	if mi == nil {
		t.Fatal("no .modinfo")
	}
	raw, _ := mi.Data()
	if info, err := ParseModInfo(raw); err != nil || info.Name != "ext4" {
		t.Errorf("modinfo %+v %v", info, err)
	}
	gz := func(b []byte) int {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Len()
	}
	a, b := gz(orig), gz(out)
	t.Logf("ext4.ko gzip: %d bytes signed with BTF, %d stripped", a, b)
	if b >= a {
		t.Errorf("stripping saved nothing: %d >= %d", b, a)
	}
	if _, had, err := StripBTF(out); err != nil || had {
		t.Errorf("second strip: %v %v", had, err)
	}
	if _, _, err := StripBTF([]byte("not ELF")); err == nil {
		t.Error("non-ELF accepted")
	}
}
