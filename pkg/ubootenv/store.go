package ubootenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// DefaultLockPath is the lock file fw_printenv and fw_setenv share, so
// that ofsctl and they never write at the same time.
const DefaultLockPath = "/var/lock/fw_printenv.lock"

// Options tune Open.
type Options struct {
	// Open opens devices; nil means OpenDevice.
	Open OpenFunc
	// DefaultEnv is a file of name=value lines (U-Boot's
	// u-boot-initial-env) to start from when no copy is valid, as
	// fw_setenv -f does. Empty or missing: no default.
	DefaultEnv string
	// Empty starts from an empty environment when no copy is valid and
	// there is no default. Only for provisioning: a board whose U-Boot
	// loads an environment holding nothing but what was set here loses
	// its built-in bootcmd.
	Empty bool
	// LockPath is flock()ed for as long as the store is open; empty
	// means no lock. A lock file that cannot be opened is not an error
	// (the C tools go on too).
	LockPath string
}

// CopyState is what Open found in one copy.
type CopyState struct {
	Location
	// Offset is the resolved offset (negative ones counted from the end).
	Offset int64
	Medium Medium
	// Valid says the CRC matched; Err says why not.
	Valid bool
	Err   error
	// Flag is the redundant copy's flag byte.
	Flag byte
}

// Store is an open environment: its configuration, which copy is
// current, and the variables.
type Store struct {
	cfg     Config
	open    OpenFunc
	copies  []CopyState
	current int
	valid   bool
	source  string
	env     *Env
	unlock  func()
}

// ErrNoValidCopy is returned by Open when no copy has a good CRC and
// there is no default environment to start from.
var ErrNoValidCopy = errors.New("no valid U-Boot environment")

// Open reads every copy cfg names and picks the current one: the only
// valid one, or of two valid copies the newer by their flags (the
// higher counter, 0 after 255; on NOR the active one), as libubootenv
// does. With no valid copy it starts from opts.DefaultEnv, else (with
// opts.Empty) from nothing, else it fails with ErrNoValidCopy.
//
// Side effects: opens the devices read-only; takes opts.LockPath until
// Close.
func Open(cfg Config, opts Options) (*Store, error) {
	if len(cfg.Copies) == 0 || len(cfg.Copies) > 2 {
		return nil, fmt.Errorf("%d environment locations: want 1 or 2", len(cfg.Copies))
	}
	s := &Store{cfg: cfg, open: opts.Open, unlock: func() {}}
	if s.open == nil {
		s.open = OpenDevice
	}
	if opts.LockPath != "" {
		s.unlock = lock(opts.LockPath)
	}
	ok := false
	defer func() {
		if !ok {
			s.unlock()
		}
	}()
	redundant := cfg.Redundant()
	envs := make([]*Env, len(cfg.Copies))
	for i, loc := range cfg.Copies {
		st, env, err := s.readCopy(loc, redundant)
		if err != nil {
			return nil, err
		}
		s.copies = append(s.copies, st)
		envs[i] = env
	}
	if redundant && s.copies[0].Medium.Counter() != s.copies[1].Medium.Counter() {
		return nil, fmt.Errorf("redundant copies on %s and %s: the two kinds mark the newer copy differently", s.copies[0].Medium, s.copies[1].Medium)
	}
	s.current, s.valid = pick(s.copies)
	switch {
	case s.valid:
		s.env = envs[s.current]
		s.source = s.describe(s.current)
	case opts.DefaultEnv != "" && fileExists(opts.DefaultEnv):
		f, err := os.Open(opts.DefaultEnv)
		if err != nil {
			return nil, err
		}
		s.env, err = ParseText(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("default environment %s: %w", opts.DefaultEnv, err)
		}
		s.source = "default environment " + opts.DefaultEnv
	case opts.Empty:
		s.env = New()
		s.source = "an empty environment"
	default:
		var why []string
		for i := range s.copies {
			why = append(why, fmt.Sprintf("%s: %v", s.describe(i), s.copies[i].Err))
		}
		hint := ""
		if opts.DefaultEnv != "" {
			hint = fmt.Sprintf("; no default environment in %s", opts.DefaultEnv)
		}
		return nil, fmt.Errorf("%w (%s)%s; U-Boot is using its built-in default: run saveenv at its prompt once", ErrNoValidCopy, joinSemi(why), hint)
	}
	ok = true
	return s, nil
}

func joinSemi(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(x)
	}
	return b.String()
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// lock takes an exclusive flock on path, best effort.
func lock(path string) func() {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o666)
	if err != nil {
		return func() {}
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}
}

// pick chooses the current copy.
func pick(c []CopyState) (current int, valid bool) {
	if len(c) == 1 {
		return 0, c[0].Valid
	}
	switch {
	case c[0].Valid && !c[1].Valid:
		return 0, true
	case !c[0].Valid && c[1].Valid:
		return 1, true
	case !c[0].Valid && !c[1].Valid:
		return 0, false
	}
	f0, f1 := c[0].Flag, c[1].Flag
	cur := 0
	if f1 > f0 {
		cur = 1
	}
	if c[0].Medium.Counter() {
		// 255 is followed by 0.
		if f0 == 0xff && f1 == 0 {
			cur = 1
		} else if f1 == 0xff && f0 == 0 {
			cur = 0
		}
	} else {
		// A flag still erased (0xff) was never marked obsolete.
		if f1 == 0xff {
			cur = 1
		} else if f0 == 0xff {
			cur = 0
		}
	}
	return cur, true
}

func (s *Store) describe(i int) string {
	c := s.copies[i]
	name := "environment"
	if len(s.copies) == 2 {
		name = fmt.Sprintf("copy %d", i)
	}
	return fmt.Sprintf("%s at %s offset 0x%X", name, c.Device, c.Offset)
}

// readCopy reads and decodes one copy. Only I/O failures are errors; a
// bad copy is reported in the state.
func (s *Store) readCopy(loc Location, redundant bool) (CopyState, *Env, error) {
	st := CopyState{Location: loc}
	d, err := s.open(loc.Device, false)
	if err != nil {
		return st, nil, fmt.Errorf("environment device: %w", err)
	}
	defer d.Close()
	st.Medium = d.Medium()
	st.Offset, err = resolveOffset(d, loc)
	if err != nil {
		return st, nil, err
	}
	buf := make([]byte, loc.Size)
	if err := readArea(d, loc, st.Offset, buf); err != nil {
		return st, nil, fmt.Errorf("reading %s at 0x%X: %w", loc.Device, st.Offset, err)
	}
	env, flag, err := Decode(buf, redundant)
	st.Flag = flag
	if err != nil {
		st.Err = err
		return st, nil, nil
	}
	st.Valid = true
	return st, env, nil
}

func resolveOffset(d Device, loc Location) (int64, error) {
	size, err := d.Size()
	if err != nil {
		return 0, fmt.Errorf("%s: size: %w", loc.Device, err)
	}
	off := loc.Offset
	if off < 0 {
		off += size
	}
	if off < 0 || off+loc.Size > size {
		return 0, fmt.Errorf("%s: environment at offset %d, 0x%X bytes, lies outside the device's %d bytes", loc.Device, loc.Offset, loc.Size, size)
	}
	return off, nil
}

// blockSize is the unit a NAND copy is read and written in.
func blockSize(d Device, loc Location) int64 {
	if loc.SectorSize > 0 {
		return loc.SectorSize
	}
	return d.EraseSize()
}

// nandBlocks lists the good blocks holding a copy of loc.Size bytes from
// off, skipping bad ones within the loc.Sectors budget, as fw_env does.
func nandBlocks(d Device, loc Location, off int64) ([]int64, error) {
	bs := blockSize(d, loc)
	if bs <= 0 {
		return nil, errors.New("NAND without an erase size")
	}
	budget := loc.Sectors
	if budget == 0 {
		budget = 1
	}
	var blocks []int64
	for left := loc.Size; left > 0; off += bs {
		bad, err := d.IsBad(off)
		if err != nil {
			return nil, err
		}
		if bad {
			budget--
			if budget <= 0 {
				return nil, fmt.Errorf("too many bad blocks (last at 0x%X)", off)
			}
			continue
		}
		blocks = append(blocks, off)
		left -= bs
	}
	return blocks, nil
}

func readArea(d Device, loc Location, off int64, buf []byte) error {
	if d.Medium() != MediumNAND {
		_, err := d.ReadAt(buf, off)
		return err
	}
	blocks, err := nandBlocks(d, loc, off)
	if err != nil {
		return err
	}
	bs := blockSize(d, loc)
	for i, b := range blocks {
		chunk := buf[int64(i)*bs:]
		if int64(len(chunk)) > bs {
			chunk = chunk[:bs]
		}
		if _, err := d.ReadAt(chunk, b); err != nil {
			return err
		}
	}
	return nil
}

// Env returns a copy of the variables.
func (s *Store) Env() *Env { return s.env.Clone() }

// Valid says whether a copy had a good CRC (false: the variables came
// from the default environment or nothing).
func (s *Store) Valid() bool { return s.valid }

// Current is the index of the copy in use (meaningful when Valid).
func (s *Store) Current() int { return s.current }

// Copies says what Open found in each copy.
func (s *Store) Copies() []CopyState { return append([]CopyState(nil), s.copies...) }

// Source says where the variables came from, e.g. "copy 1 at
// /dev/mtd0 offset 0xC0000".
func (s *Store) Source() string { return s.source }

// Close releases the lock.
func (s *Store) Close() error {
	s.unlock()
	s.unlock = func() {}
	return nil
}

// Save writes e as the new environment: to the copy not in use (the only
// one for a single environment), synced and read back; then, on NOR, the
// old copy is marked obsolete. A power cut before the read-back leaves
// the old copy current.
//
// Side effects: opens the device read-write; erases and programs flash.
func (s *Store) Save(e *Env) error {
	redundant := s.cfg.Redundant()
	target := 0
	if redundant {
		target = 1 - s.current
	}
	var flag byte
	if redundant {
		cur := s.copies[s.current]
		switch {
		case !s.copies[target].Medium.Counter():
			flag = 1 // active
		case s.valid:
			flag = cur.Flag + 1 // wraps to 0 after 255
		default:
			flag = 1
		}
	}
	t := &s.copies[target]
	data, err := Encode(e, int(t.Size), redundant, flag)
	if err != nil {
		return err
	}
	if err := s.writeCopy(t.Location, t.Offset, data); err != nil {
		return fmt.Errorf("writing %s: %w", s.describe(target), err)
	}
	if redundant && s.valid && !s.copies[s.current].Medium.Counter() {
		old := s.copies[s.current]
		if err := s.markObsolete(old); err != nil {
			// The new copy is complete and valid; with both flags
			// active U-Boot would take copy 0, which may be the old one.
			return fmt.Errorf("new environment written to %s, but marking %s obsolete failed: %w", s.describe(target), s.describe(s.current), err)
		}
		s.copies[s.current].Flag = 0
	}
	t.Valid, t.Err, t.Flag = true, nil, flag
	s.current, s.valid = target, true
	s.env = e.Clone()
	s.source = s.describe(target)
	return nil
}

// ErrVerify is returned when a written copy does not read back as
// written.
var ErrVerify = errors.New("read-back differs from what was written")

func (s *Store) writeCopy(loc Location, off int64, data []byte) error {
	d, err := s.open(loc.Device, true)
	if err != nil {
		return err
	}
	defer d.Close()
	switch d.Medium() {
	case MediumFile:
		if _, err := d.WriteAt(data, off); err != nil {
			return err
		}
	case MediumNOR:
		if err := writeNOR(d, off, data); err != nil {
			return err
		}
	case MediumNAND:
		if err := writeNAND(d, loc, off, data); err != nil {
			return err
		}
	}
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	back := make([]byte, len(data))
	if err := readArea(d, loc, off, back); err != nil {
		return fmt.Errorf("reading back: %w", err)
	}
	if !bytes.Equal(back, data) {
		return ErrVerify
	}
	return nil
}

// writeNOR programs data at off: every erase block it touches is read,
// and only the blocks whose content changes are erased and written
// whole, so that bytes sharing a block with the environment survive.
func writeNOR(d Device, off int64, data []byte) error {
	es := d.EraseSize()
	if es <= 0 {
		return errors.New("NOR flash without an erase size")
	}
	start := off / es * es
	end := (off + int64(len(data)) + es - 1) / es * es
	old := make([]byte, end-start)
	if _, err := d.ReadAt(old, start); err != nil {
		return fmt.Errorf("reading 0x%X-0x%X: %w", start, end, err)
	}
	next := bytes.Clone(old)
	copy(next[off-start:], data)
	for b := int64(0); b < end-start; b += es {
		if bytes.Equal(old[b:b+es], next[b:b+es]) {
			continue // unchanged: spare the flash an erase cycle
		}
		if err := d.Erase(start+b, es); err != nil {
			return err
		}
		if _, err := d.WriteAt(next[b:b+es], start+b); err != nil {
			return fmt.Errorf("writing 0x%X: %w", start+b, err)
		}
	}
	return nil
}

// writeNAND erases and programs the good blocks of the copy in turn.
func writeNAND(d Device, loc Location, off int64, data []byte) error {
	blocks, err := nandBlocks(d, loc, off)
	if err != nil {
		return err
	}
	bs := blockSize(d, loc)
	for i, b := range blocks {
		chunk := data[int64(i)*bs:]
		if int64(len(chunk)) > bs {
			chunk = chunk[:bs]
		}
		if err := d.Erase(b, bs); err != nil {
			return err
		}
		if _, err := d.WriteAt(chunk, b); err != nil {
			return fmt.Errorf("writing 0x%X: %w", b, err)
		}
	}
	return nil
}

// markObsolete clears the flag byte of a NOR copy to 0 without an erase
// (programming only turns 1 bits into 0).
func (s *Store) markObsolete(c CopyState) error {
	d, err := s.open(c.Device, true)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.WriteAt([]byte{0}, c.Offset+4); err != nil {
		return err
	}
	return d.Sync()
}
