package kmod

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
)

// SignatureMagic ends a signed module file (scripts/sign-file.c).
const SignatureMagic = "~Module signature appended~\n"

// signatureInfoLen is the size of struct module_signature, which sits
// just before the magic: algo, hash, id_type, signer_len, key_id_len,
// three pad bytes, then sig_len as a big-endian uint32.
const signatureInfoLen = 12

// StripSignature returns data without its appended signature, and
// whether there was one. The kernel then cannot check the module: it
// loads it only if signatures are not enforced (no module.sig_enforce,
// no Secure Boot lockdown) and taints itself ("module verification
// failed", taint flag E), in exchange for not hashing the whole file on
// every load.
func StripSignature(data []byte) ([]byte, bool, error) {
	if !bytes.HasSuffix(data, []byte(SignatureMagic)) {
		return data, false, nil
	}
	end := len(data) - len(SignatureMagic)
	if end < signatureInfoLen {
		return nil, false, errors.New("module signature: truncated")
	}
	info := data[end-signatureInfoLen : end]
	signer, keyID := int(info[3]), int(info[4])
	sigLen := int(binary.BigEndian.Uint32(info[8:12]))
	n := signatureInfoLen + signer + keyID + sigLen
	if n > end {
		return nil, false, fmt.Errorf("module signature: %d bytes of signature in a %d-byte file", n, len(data))
	}
	return data[:end-n], true, nil
}

// StripBTF hides a module's .BTF section (its BPF type information) from
// the kernel, which otherwise parses and checks it on every load: the
// section loses its name and its bytes are zeroed, so the file keeps its
// layout and compresses to almost nothing there. It returns whether there
// was a .BTF section. Tracing tools then see no types for the module;
// nothing else uses them.
func StripBTF(data []byte) ([]byte, bool, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, false, fmt.Errorf("module ELF: %w", err)
	}
	defer f.Close()
	var shoff uint64
	var shentsize uint64
	switch f.Class {
	case elf.ELFCLASS64:
		shoff = f.ByteOrder.Uint64(data[0x28:])
		shentsize = uint64(f.ByteOrder.Uint16(data[0x3a:]))
	case elf.ELFCLASS32:
		shoff = uint64(f.ByteOrder.Uint32(data[0x20:]))
		shentsize = uint64(f.ByteOrder.Uint16(data[0x2e:]))
	default:
		return nil, false, fmt.Errorf("module ELF: class %v", f.Class)
	}
	out := append([]byte(nil), data...)
	found := false
	for i, s := range f.Sections {
		if s.Name != ".BTF" {
			continue
		}
		if s.Type == elf.SHT_NOBITS || s.Flags&elf.SHF_ALLOC != 0 {
			return nil, false, fmt.Errorf("module ELF: unexpected .BTF section (type %v, flags %v)", s.Type, s.Flags)
		}
		hdr := shoff + uint64(i)*shentsize
		if hdr+4 > uint64(len(out)) || s.Offset+s.Size > uint64(len(out)) {
			return nil, false, errors.New("module ELF: .BTF section outside the file")
		}
		f.ByteOrder.PutUint32(out[hdr:], 0) // sh_name: the empty name
		clear(out[s.Offset : s.Offset+s.Size])
		found = true
	}
	return out, found, nil
}
