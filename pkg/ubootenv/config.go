package ubootenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// DefaultConfigPath is where fw_printenv and fw_setenv look for the
// configuration.
const DefaultConfigPath = "/etc/fw_env.config"

// DefaultEnvPath is the file of default variables fw_setenv falls back on
// when no copy is valid (U-Boot's `make u-boot-initial-env` writes it).
const DefaultEnvPath = "/etc/u-boot-initial-env"

// Location is one line of fw_env.config: where one copy of the
// environment lives.
type Location struct {
	// Device is a file, a block device or an MTD character device.
	Device string
	// Offset of the copy in Device. A negative offset counts from the
	// end of the device (block devices and files).
	Offset int64
	// Size is the copy's size, header included: U-Boot's
	// CONFIG_ENV_SIZE.
	Size int64
	// SectorSize is the flash erase unit the copy lives in (0: the
	// device's own erase size; files need none).
	SectorSize int64
	// Sectors is how many sectors the copy may spread over on NAND,
	// where bad blocks are skipped (0: 1).
	Sectors int64
}

// Config is a parsed fw_env.config: one copy, or two for a redundant
// environment.
type Config struct {
	Copies []Location
}

// Redundant says whether the environment has two copies.
func (c Config) Redundant() bool { return len(c.Copies) == 2 }

// String renders c as fw_env.config text, numbers in hex as the tools
// document them.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("# Device            Offset    Size      Sector size  Sectors\n")
	for _, l := range c.Copies {
		b.WriteString(l.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// String renders one fw_env.config line.
func (l Location) String() string {
	off := fmt.Sprintf("0x%X", l.Offset)
	if l.Offset < 0 {
		off = fmt.Sprintf("-0x%X", -l.Offset)
	}
	s := fmt.Sprintf("%-19s %-9s 0x%X", l.Device, off, l.Size)
	if l.SectorSize != 0 || l.Sectors != 0 {
		s += fmt.Sprintf("    0x%X", l.SectorSize)
	}
	if l.Sectors != 0 {
		s += fmt.Sprintf("       0x%X", l.Sectors)
	}
	return s
}

// ConfigError is a line of fw_env.config that cannot be used.
type ConfigError struct {
	Line int
	Text string
	Err  error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("fw_env.config line %d %q: %v", e.Line, e.Text, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// ErrNoCopies is returned for a configuration without any location.
var ErrNoCopies = errors.New("fw_env.config names no environment location")

// ParseConfig reads fw_env.config text: one line per copy,
//
//	DEVICE OFFSET ENV_SIZE [SECTOR_SIZE [SECTORS]]
//
// with OFFSET in C notation (0x hex, leading-0 octal, decimal, negative
// from the end of the device) and the sizes in hex with or without 0x,
// as libubootenv reads them. Lines starting with # and blank lines are
// skipped. Stricter than the C tools, which skip a line they cannot read
// or read half of it: every such line here is an error naming it, since
// a wrong offset would write over something else. A third location is
// an error too; the two copies of a redundant environment must have the
// same size.
func ParseConfig(r io.Reader) (Config, error) {
	var c Config
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		text := sc.Text()
		line := strings.TrimSpace(text)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		loc, err := parseLocation(line)
		if err != nil {
			return Config{}, &ConfigError{Line: n, Text: text, Err: err}
		}
		if len(c.Copies) == 2 {
			return Config{}, &ConfigError{Line: n, Text: text, Err: errors.New("a third location (one copy, or two for a redundant environment)")}
		}
		if len(c.Copies) == 1 && c.Copies[0].Size != loc.Size {
			return Config{}, &ConfigError{Line: n, Text: text, Err: fmt.Errorf("redundant copies differ in size (0x%X and 0x%X)", c.Copies[0].Size, loc.Size)}
		}
		c.Copies = append(c.Copies, loc)
	}
	if err := sc.Err(); err != nil {
		return Config{}, err
	}
	if len(c.Copies) == 0 {
		return Config{}, ErrNoCopies
	}
	return c, nil
}

// minSize is the smallest environment that holds a header and the
// terminating empty string.
const minSize = 5 + 2

func parseLocation(line string) (Location, error) {
	f := strings.Fields(line)
	if len(f) < 3 {
		return Location{}, errors.New("want DEVICE OFFSET ENV_SIZE [SECTOR_SIZE [SECTORS]]")
	}
	if len(f) > 5 {
		return Location{}, fmt.Errorf("%d fields, at most 5", len(f))
	}
	var l Location
	var err error
	l.Device = f[0]
	if l.Offset, err = strconv.ParseInt(f[1], 0, 64); err != nil {
		return Location{}, fmt.Errorf("offset %q: not a number", f[1])
	}
	if l.Size, err = parseHex(f[2]); err != nil {
		return Location{}, fmt.Errorf("size %q: %v", f[2], err)
	}
	if l.Size < minSize {
		return Location{}, fmt.Errorf("size 0x%X is too small for an environment", l.Size)
	}
	if len(f) > 3 {
		if l.SectorSize, err = parseHex(f[3]); err != nil {
			return Location{}, fmt.Errorf("sector size %q: %v", f[3], err)
		}
	}
	if len(f) > 4 {
		if l.Sectors, err = parseHex(f[4]); err != nil {
			return Location{}, fmt.Errorf("sector count %q: %v", f[4], err)
		}
	}
	return l, nil
}

// parseHex reads a size as %zx does: hex digits, with or without 0x.
func parseHex(s string) (int64, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if t == "" {
		return 0, errors.New("not a hex number")
	}
	v, err := strconv.ParseUint(t, 16, 62)
	if err != nil {
		return 0, errors.New("not a hex number")
	}
	return int64(v), nil
}

// ReadConfig parses the fw_env.config file at path.
func ReadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, err
	}
	defer f.Close()
	c, err := ParseConfig(f)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
