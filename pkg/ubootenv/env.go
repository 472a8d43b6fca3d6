// Package ubootenv reads and writes the U-Boot environment from Linux the
// way fw_printenv and fw_setenv do: fw_env.config says where the one or
// two copies live (a file, a block device, or an MTD flash device that
// must be erased before it is written); each copy is a CRC-32, for a
// redundant environment a flag byte, then NUL-terminated name=value
// strings ending with an empty one.
//
// Writes never touch the copy U-Boot would load now: a redundant
// environment is written to the other copy, synced, read back, and only
// then marked newer (a counter on files, block devices and NAND; on NOR
// flash the old copy's flag is cleared to "obsolete"), so a power cut at
// any moment leaves one valid copy. A single copy has no such safety:
// a cut mid-write leaves a bad CRC and U-Boot falls back to its built-in
// default environment.
//
// Parsing (ParseConfig, Decode) is pure and fuzzed; the device access is
// behind the Device interface, with files, block devices and Linux MTD
// character devices provided.
package ubootenv

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"strings"
)

// FlagsVar is the variable holding per-variable type and access flags,
// e.g. ".flags=ethaddr:mo,serial#:so".
const FlagsVar = ".flags"

// Env is a set of U-Boot variables.
type Env struct {
	vars map[string]string
}

// New returns an empty environment.
func New() *Env { return &Env{vars: map[string]string{}} }

// Get returns the value of name.
func (e *Env) Get(name string) (string, bool) {
	v, ok := e.vars[name]
	return v, ok
}

// Len is the number of variables.
func (e *Env) Len() int { return len(e.vars) }

// Names returns the variable names in the order U-Boot stores and prints
// them (byte order, as strcmp sorts).
func (e *Env) Names() []string {
	names := make([]string, 0, len(e.vars))
	for n := range e.vars {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Clone returns a copy of e.
func (e *Env) Clone() *Env {
	c := New()
	for k, v := range e.vars {
		c.vars[k] = v
	}
	return c
}

// Equal says whether e and o hold the same variables.
func (e *Env) Equal(o *Env) bool {
	if e.Len() != o.Len() {
		return false
	}
	for k, v := range e.vars {
		if w, ok := o.vars[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Errors from Set and Delete.
var (
	ErrBadName  = errors.New("bad variable name")
	ErrReadOnly = errors.New("variable is read-only or write-once (.flags)")
)

// CheckName reports whether name can be a variable name: not empty, no
// '=' (U-Boot's setenv refuses it), no NUL.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrBadName)
	case strings.ContainsAny(name, "=\x00"):
		return fmt.Errorf("%w %q: it may not contain '=' or NUL", ErrBadName, name)
	}
	return nil
}

// Set sets name to value. A variable that exists and whose .flags access
// is read-only (r) or write-once (o) cannot be changed, as libubootenv
// enforces.
func (e *Env) Set(name, value string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if strings.IndexByte(value, 0) >= 0 {
		return fmt.Errorf("value of %s contains NUL", name)
	}
	if err := e.writable(name); err != nil {
		return err
	}
	e.vars[name] = value
	return nil
}

// Delete removes name; deleting a variable that does not exist is not an
// error (fw_setenv NAME does nothing then).
func (e *Env) Delete(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if err := e.writable(name); err != nil {
		return err
	}
	delete(e.vars, name)
	return nil
}

func (e *Env) writable(name string) error {
	if _, exists := e.vars[name]; !exists {
		return nil
	}
	switch Flags(e).Access(name) {
	case 'r', 'o':
		return fmt.Errorf("%s: %w", name, ErrReadOnly)
	}
	return nil
}

// VarFlags are the .flags entries: variable name to flag letters (a type
// letter s d x b i m, an access letter a r o c).
type VarFlags map[string]string

// Flags parses e's .flags variable. Malformed entries are skipped.
func Flags(e *Env) VarFlags {
	f := VarFlags{}
	v, ok := e.vars[FlagsVar]
	if !ok {
		return f
	}
	for _, item := range strings.Split(v, ",") {
		name, letters, ok := strings.Cut(strings.TrimSpace(item), ":")
		if ok && name != "" {
			f[name] = letters
		}
	}
	return f
}

// Access returns the access letter for name ('a' when none is given).
func (f VarFlags) Access(name string) byte {
	for _, c := range []byte(f[name]) {
		switch c {
		case 'a', 'r', 'o', 'c':
			return c
		}
	}
	return 'a'
}

// HeaderSize is the size of a copy's header: the CRC, and for a
// redundant environment the flag byte.
func HeaderSize(redundant bool) int {
	if redundant {
		return 5
	}
	return 4
}

// ErrTooBig is returned when the variables do not fit the copy.
var ErrTooBig = errors.New("environment does not fit")

// Encode returns one copy of e, size bytes long: the CRC-32 (IEEE,
// little-endian, as ARM U-Boot stores it) over the data area, for a
// redundant environment the flag byte, then the variables in byte order
// as "name=value\0", an empty string, and zero padding.
func Encode(e *Env, size int, redundant bool, flag byte) ([]byte, error) {
	h := HeaderSize(redundant)
	if size < h+1 {
		return nil, fmt.Errorf("environment size %d is too small", size)
	}
	out := make([]byte, size)
	data := out[h:]
	pos := 0
	for _, n := range e.Names() {
		entry := n + "=" + e.vars[n]
		// Room for this entry's NUL and the final empty string.
		if pos+len(entry)+2 > len(data) {
			return nil, fmt.Errorf("%w in %d bytes (%d for data): stopped at %s", ErrTooBig, size, len(data), n)
		}
		pos += copy(data[pos:], entry)
		pos++ // NUL
	}
	if pos == 0 {
		// An empty environment is one empty string, and the end mark.
		pos = 1
	}
	if redundant {
		out[4] = flag
	}
	binary.LittleEndian.PutUint32(out, crc32.ChecksumIEEE(data))
	return out, nil
}

// DataSize is how many bytes e takes in a copy's data area, the
// terminating empty string included.
func DataSize(e *Env) int {
	n := 1
	for k, v := range e.vars {
		n += len(k) + 1 + len(v) + 1
	}
	return n
}

// Errors from Decode.
var (
	ErrShort     = errors.New("environment copy shorter than its header")
	ErrBadCRC    = errors.New("bad CRC")
	ErrNoEndMark = errors.New("environment data runs to the end without its terminating empty string")
)

// Decode reads one copy: it checks the CRC and returns the variables and
// the flag byte (0 for a single copy). Strings without '=' are skipped
// and a later duplicate wins, as U-Boot and libubootenv do.
func Decode(b []byte, redundant bool) (*Env, byte, error) {
	h := HeaderSize(redundant)
	if len(b) < h+1 {
		return nil, 0, ErrShort
	}
	var flag byte
	if redundant {
		flag = b[4]
	}
	data := b[h:]
	if crc32.ChecksumIEEE(data) != binary.LittleEndian.Uint32(b) {
		return nil, flag, ErrBadCRC
	}
	e := New()
	for pos := 0; ; {
		if pos >= len(data) {
			return nil, flag, ErrNoEndMark
		}
		end := bytes.IndexByte(data[pos:], 0)
		if end < 0 {
			return nil, flag, ErrNoEndMark
		}
		s := data[pos : pos+end]
		pos += end + 1
		if len(s) == 0 {
			break
		}
		name, value, ok := strings.Cut(string(s), "=")
		if !ok || name == "" {
			continue
		}
		e.vars[name] = value
	}
	return e, flag, nil
}

// ParseText reads variables from "name=value" lines, the format of
// U-Boot's u-boot-initial-env file and of fw_setenv --script: lines
// starting with # and lines without '=' are skipped, and an empty value
// leaves the variable out.
func ParseText(r io.Reader) (*Env, error) {
	e := New()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok || name == "" {
			continue
		}
		if value == "" {
			delete(e.vars, name)
			continue
		}
		e.vars[name] = value
	}
	return e, sc.Err()
}
