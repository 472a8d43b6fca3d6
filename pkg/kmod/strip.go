package kmod

import (
	"bytes"
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
	f, err := parseELF(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, false, fmt.Errorf("module ELF: %w", err)
	}
	out := append([]byte(nil), data...)
	found := false
	for _, s := range f.sections {
		if s.name != ".BTF" {
			continue
		}
		if s.typ == shtNobits || s.flags&shfAlloc != 0 {
			return nil, false, fmt.Errorf("module ELF: unexpected .BTF section (type %d, flags %#x)", s.typ, s.flags)
		}
		if s.offset > uint64(len(out)) || s.size > uint64(len(out))-s.offset {
			return nil, false, errors.New("module ELF: .BTF section outside the file")
		}
		f.order.PutUint32(out[s.hdr:], 0) // sh_name: the empty name
		clear(out[s.offset : s.offset+s.size])
		found = true
	}
	return out, found, nil
}
