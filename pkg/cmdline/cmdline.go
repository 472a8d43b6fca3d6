// Package cmdline parses the kernel command line into the settings the
// ofsroot init acts on: the overlay switch and its RAM size, the kernel's
// own root words (root=, rootfstype=, rootflags=, ro, rw, rootwait,
// rootdelay=, init=, panic=), the rescue policy, the firmware sandbox's
// words (overlayfs=sandbox, ofs-sandbox-*), where the writable layer
// lives (ofs-upper=, ofs-upper-dir=, ofs-reset=), the per-mount policy
// (ofs-mounts=, and MOUNTS= of ofsroot.conf through ConfVars) and the
// protection words of other tools kept working (overlayroot=,
// systemd.volatile=; mounts.go).
//
// Parsing is pure: Parse takes the text of /proc/cmdline. A bad value
// never stops a boot; it yields a Warning naming the word, the value and
// the default used instead. The one exception to "use the default" is
// the protection word: a mistyped overlayfs= value fails closed and
// protects (Config.OverlayUnknown), whatever else the line says.
package cmdline

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// OverlayMode is what overlayfs= asks for.
type OverlayMode int

const (
	// OverlayOff boots the real root as ro/rw say (the default: the seed
	// images ship the overlay support switched off).
	OverlayOff OverlayMode = iota
	// OverlayOn boots the real root read-only under a RAM overlay.
	OverlayOn
	// OverlaySandbox builds the same protected root, but the init stays
	// PID 1 as a supervisor and runs the root's init as PID 1 of new
	// namespaces (overlayfs=sandbox; see the ofs-sandbox-* words).
	OverlaySandbox
)

func (m OverlayMode) String() string {
	switch m {
	case OverlayOn:
		return "yes"
	case OverlaySandbox:
		return "sandbox"
	}
	return "no"
}

// Protected says whether the mode builds the RAM overlay.
func (m OverlayMode) Protected() bool { return m == OverlayOn || m == OverlaySandbox }

// SandboxAlways is Config.SandboxRestarts for ofs-sandbox-restart=always.
const SandboxAlways = -1

// Sandbox defaults.
const (
	DefaultSandboxRestarts = 3
	DefaultSandboxNet      = "private"
)

// Rescue is what the init does when it cannot boot the root at all.
type Rescue string

const (
	RescueReboot Rescue = "reboot" // the default, for unattended devices
	RescueHalt   Rescue = "halt"
	RescueShell  Rescue = "shell" // a shell on the console, if the initramfs has one
)

// Defaults.
const (
	DefaultPercent     = 50
	DefaultRescueDelay = 10 * time.Second
	// DefaultDeviceWait is how long the init waits for the root device
	// without rootwait: the drivers are modules loaded a moment earlier
	// and probe asynchronously (an SD card takes about a second).
	DefaultDeviceWait = 5 * time.Second
)

// Size is the RAM layer's size: a percentage of MemTotal or bytes.
type Size struct {
	Percent int    // 1-100, when Bytes is 0
	Bytes   uint64 // absolute size, when set
}

// For returns the size in bytes on a machine with memTotal bytes of RAM.
func (s Size) For(memTotal uint64) uint64 {
	if s.Bytes != 0 {
		return s.Bytes
	}
	return memTotal / 100 * uint64(s.Percent)
}

// Default RAM reserve: the RAM layer never takes more than what is
// available when it is mounted minus the larger of these two, unless
// ofs-size-reserve= says otherwise.
const (
	DefaultReserveBytes   = 8 << 20
	DefaultReservePercent = 10
)

// RAMCap is the most the RAM layer may take, so that filling / ends in
// ENOSPC and not in the OOM killer or a kernel panic: the memory
// available when the layer is mounted (MemAvailable: what the kernel, its
// caches and the initramfs have not taken; tmpfs pages cannot be
// reclaimed without swap) minus a reserve for the kernel and the
// programs. The reserve is max(8 MiB, 10% of MemTotal) unless
// ofs-size-reserve= sets it (N% of MemTotal, or bytes);
// ofs-size-reserve=0 lifts the cap (ok is false then). When the reserve
// takes all of it, the cap is 4 KiB: writes to / fail with ENOSPC.
// (Measured on QEMU guests of 96, 128 and 256 MiB: see
// tests/hostile_test.go.)
func (c Config) RAMCap(memTotal, memAvailable uint64) (limit uint64, ok bool) {
	if c.ReserveOff {
		return 0, false
	}
	reserve := uint64(DefaultReserveBytes)
	if p := memTotal * DefaultReservePercent / 100; p > reserve {
		reserve = p
	}
	if c.Reserve != (Size{}) {
		reserve = c.Reserve.For(memTotal)
	}
	const floor = 4 << 10
	if reserve+floor >= memAvailable {
		return floor, true
	}
	return memAvailable - reserve, true
}

func (s Size) String() string {
	if s.Bytes != 0 {
		return formatBytes(s.Bytes)
	}
	return fmt.Sprintf("%d%%", s.Percent)
}

// Config is everything the init takes from the command line.
type Config struct {
	Overlay OverlayMode
	// OverlayWord is overlayfs='s value as written ("" when absent).
	OverlayWord string
	// OverlayUnknown: overlayfs= had a value that is none of the known
	// ones (overlayfs=yse). The root is then protected (Overlay is
	// OverlayOn): a mistyped protection word must never boot the real
	// root writable.
	OverlayUnknown bool
	Size           Size
	// Reserve is the RAM kept out of the RAM layer for the kernel and
	// the programs (ofs-size-reserve=); the zero Size means the default
	// rule (see RAMCap). ReserveOff (ofs-size-reserve=0) lifts the cap.
	Reserve    Size
	ReserveOff bool
	// PanicSet: the command line has panic=, so the kernel's reboot-on-
	// panic timeout is the user's and the init leaves it alone.
	PanicSet bool

	Root       string   // root= as written
	RootFSType []string // rootfstype=, a comma list
	RootFlags  string   // rootflags=
	// ReadWrite is true when the last of ro/rw was rw. The kernel's
	// default is ro.
	ReadWrite bool
	// RootWait: wait for the root device. RootWaitTimeout 0 means for
	// ever, as the kernel's bare rootwait does; rootwait=N caps it.
	RootWait        bool
	RootWaitTimeout time.Duration
	RootDelay       time.Duration

	Init string // init=

	Rescue      Rescue
	RescueDelay time.Duration

	// The firmware sandbox (overlayfs=sandbox).
	// SandboxRestarts: how often the supervisor restarts the root's init
	// after it ends before it reboots (SandboxAlways: for ever).
	SandboxRestarts int
	// SandboxNet is "private" (a network namespace with only lo) or
	// "host".
	SandboxNet string
	// SandboxHostname is the sandbox's hostname; "" means the root's
	// /etc/hostname.
	SandboxHostname string
	// SandboxDevices are extra /dev nodes the sandbox gets
	// (ofs-sandbox-dev=ttymxc0,i2c-1).
	SandboxDevices []string

	// Upper is where the writable layer lives (ofs-upper=,
	// ofs-upper-dir=; upper.go).
	Upper Upper
	// UpperReset: wipe a persistent layer at this boot (ofs-reset=1, which
	// the boot scripts pass once and clear, as they do ofs-once).
	UpperReset bool

	// Mounts are the per-mount policies of ofs-mounts= (mounts.go);
	// MountsRecurse: every other mount is protected the way overlayroot's
	// recurse=1 does it (set by overlayroot=tmpfs): every block mount but
	// vfat. Alias is the
	// overlayroot= or systemd.volatile= word that set the protection.
	Mounts        []MountRule
	MountsRecurse bool
	Alias         Alias
}

// Warning is a word whose value could not be used.
type Warning struct {
	Word    string // the key, e.g. "ofs-size"
	Value   string // its value as written
	Problem string // what is wrong with it
	Default string // what is used instead
}

func (w Warning) String() string {
	return fmt.Sprintf("%s=%s: %s; using %s", w.Word, w.Value, w.Problem, w.Default)
}

// Default returns the settings used when the command line says nothing.
func Default() Config {
	return Config{
		Size:        Size{Percent: DefaultPercent},
		Rescue:      RescueReboot,
		RescueDelay: DefaultRescueDelay,

		SandboxRestarts: DefaultSandboxRestarts,
		SandboxNet:      DefaultSandboxNet,

		Upper: Upper{Dir: DefaultUpperDir},
	}
}

// Parse reads a kernel command line. Words after "--" belong to the real
// init and are not read here; the kernel hands them to the init itself.
func Parse(line string) (Config, []Warning) {
	c := Default()
	var warns []Warning
	warn := func(key, val, problem, def string) {
		warns = append(warns, Warning{Word: key, Value: val, Problem: problem, Default: def})
	}
	overlaySeen := false
	var aliasKey, aliasVal string
	for _, w := range Split(line) {
		if w == "--" {
			break
		}
		key, val, hasVal := strings.Cut(w, "=")
		switch key {
		case "ofs-mounts":
			rules, problems := ParseMountRules(val)
			for _, p := range problems {
				warn(key, val, p, "keep for that item")
			}
			c.Mounts = MergeMountRules(c.Mounts, rules)
		case "overlayroot", "systemd.volatile":
			if val != "" {
				aliasKey, aliasVal = key, val
			}
		case "overlayfs":
			overlaySeen = true
			if !hasVal {
				c.Overlay, c.OverlayWord, c.OverlayUnknown = OverlayOn, "yes", false
				continue
			}
			if strings.EqualFold(val, "sandbox") {
				c.Overlay, c.OverlayWord, c.OverlayUnknown = OverlaySandbox, val, false
				continue
			}
			on, ok := ParseBool(val)
			if !ok {
				// Fail closed: a mistyped protection word protects.
				warn(key, val, "not one of yes/no, on/off, true/false, 1/0, sandbox", "yes (PROTECTED: an unknown protection word fails closed; rw is ignored)")
				c.Overlay, c.OverlayWord, c.OverlayUnknown = OverlayOn, val, true
				continue
			}
			c.OverlayWord, c.OverlayUnknown = val, false
			c.Overlay = OverlayOff
			if on {
				c.Overlay = OverlayOn
			}
		case "ofs-size":
			s, err := ParseSize(val)
			if err != nil {
				warn(key, val, err.Error(), fmt.Sprintf("%d%%", DefaultPercent))
				c.Size = Size{Percent: DefaultPercent}
				continue
			}
			c.Size = s
		case "ofs-size-reserve":
			if val == "0" {
				c.Reserve, c.ReserveOff = Size{}, true
				continue
			}
			s, err := ParseSize(val)
			if err != nil {
				warn(key, val, err.Error(), "the default reserve (max(8M, 10%))")
				c.Reserve, c.ReserveOff = Size{}, false
				continue
			}
			c.Reserve, c.ReserveOff = s, false
		case "ofs-upper":
			dir := c.Upper.Dir
			u, problem := parseUpper(val)
			if problem != "" {
				warn(key, val, problem, "ram (a tmpfs layer)")
			}
			u.Dir = dir
			c.Upper = u
		case "ofs-upper-dir":
			d, ok := parseUpperDir(val)
			if !ok {
				warn(key, val, "not a relative folder without '..'", DefaultUpperDir)
				d = DefaultUpperDir
			}
			c.Upper.Dir = d
		case "ofs-reset":
			on, ok := ParseBool(val)
			if !hasVal {
				on, ok = true, true
			}
			if !ok {
				warn(key, val, "not one of yes/no, on/off, true/false, 1/0", "no reset")
			}
			c.UpperReset = on && ok
		case "panic":
			c.PanicSet = true
		case "ofs-rescue":
			switch r := Rescue(strings.ToLower(val)); r {
			case RescueReboot, RescueHalt, RescueShell:
				c.Rescue = r
			default:
				warn(key, val, "not one of reboot, halt, shell", string(RescueReboot))
				c.Rescue = RescueReboot
			}
		case "ofs-rescue-delay":
			d, err := parseSeconds(val)
			if err != nil {
				warn(key, val, err.Error(), DefaultRescueDelay.String())
				c.RescueDelay = DefaultRescueDelay
				continue
			}
			c.RescueDelay = d
		case "ofs-sandbox-restart":
			n, ok := parseRestarts(val)
			if !ok {
				warn(key, val, "not one of always, never or a count", fmt.Sprint(DefaultSandboxRestarts))
				c.SandboxRestarts = DefaultSandboxRestarts
				continue
			}
			c.SandboxRestarts = n
		case "ofs-sandbox-net":
			switch v := strings.ToLower(val); v {
			case "private", "host":
				c.SandboxNet = v
			default:
				warn(key, val, "not one of private, host", DefaultSandboxNet)
				c.SandboxNet = DefaultSandboxNet
			}
		case "ofs-sandbox-hostname":
			if !validHostname(val) {
				warn(key, val, "not a host name (1-64 letters, digits, '-', '.')", "the root's /etc/hostname")
				c.SandboxHostname = ""
				continue
			}
			c.SandboxHostname = val
		case "ofs-sandbox-dev":
			c.SandboxDevices = nil
			for _, d := range strings.Split(val, ",") {
				d = strings.TrimPrefix(d, "/dev/")
				if d == "" || strings.Contains(d, "..") {
					continue
				}
				c.SandboxDevices = append(c.SandboxDevices, "/dev/"+d)
			}
		case "root":
			c.Root = val
		case "rootfstype":
			c.RootFSType = nil
			for _, t := range strings.Split(val, ",") {
				if t != "" {
					c.RootFSType = append(c.RootFSType, t)
				}
			}
		case "rootflags":
			c.RootFlags = val
		case "ro":
			if !hasVal {
				c.ReadWrite = false
			}
		case "rw":
			if !hasVal {
				c.ReadWrite = true
			}
		case "rootwait":
			c.RootWait = true
			c.RootWaitTimeout = 0
			if hasVal {
				d, err := parseSeconds(val)
				if err != nil {
					warn(key, val, err.Error(), "wait for ever")
					continue
				}
				c.RootWaitTimeout = d
			}
		case "rootdelay":
			d, err := parseSeconds(val)
			if err != nil {
				warn(key, val, err.Error(), "no delay")
				continue
			}
			c.RootDelay = d
		case "init":
			c.Init = val
		}
	}
	if aliasKey != "" {
		applyAlias(&c, aliasKey, aliasVal, overlaySeen, warn)
	}
	return c, warns
}

// Split cuts a command line into words the way the kernel does: at
// spaces, except inside double quotes, which are removed.
func Split(line string) []string {
	var words []string
	var b strings.Builder
	inQuote, inWord := false, false
	for _, r := range line {
		switch {
		case r == '"':
			inQuote = !inQuote
			inWord = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == 0):
			if inWord {
				words = append(words, b.String())
				b.Reset()
				inWord = false
			}
		default:
			b.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, b.String())
	}
	return words
}

// ParseBool reads yes/no, on/off, true/false, y/n, 1/0 in any case.
func ParseBool(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "yes", "y", "on", "true", "1", "enable", "enabled":
		return true, true
	case "no", "n", "off", "false", "0", "disable", "disabled":
		return false, true
	}
	return false, false
}

// ParseSize reads ofs-size's value: "20" or "20%" (percent of RAM,
// 1-100), or "512M", "1G", "65536K" (absolute; suffix K, M or G, any
// case, binary units).
func ParseSize(s string) (Size, error) {
	if s == "" {
		return Size{}, fmt.Errorf("empty")
	}
	num, unit := s, ""
	switch last := s[len(s)-1]; last {
	case '%':
		num = s[:len(s)-1]
	case 'k', 'K', 'm', 'M', 'g', 'G':
		num, unit = s[:len(s)-1], strings.ToUpper(string(last))
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return Size{}, fmt.Errorf("not a size (want a percentage 1-100, N%%, or N with K, M or G)")
	}
	if unit == "" {
		if n < 1 || n > 100 {
			return Size{}, fmt.Errorf("percentage out of range 1-100")
		}
		return Size{Percent: int(n)}, nil
	}
	shift := map[string]uint{"K": 10, "M": 20, "G": 30}[unit]
	if n == 0 {
		return Size{}, fmt.Errorf("size must be above zero")
	}
	if n > (1<<63)>>shift {
		return Size{}, fmt.Errorf("size too large")
	}
	return Size{Bytes: n << shift}, nil
}

func parseSeconds(s string) (time.Duration, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("not a whole number of seconds")
	}
	return time.Duration(n) * time.Second, nil
}

func formatBytes(b uint64) string {
	switch {
	case b%(1<<30) == 0:
		return fmt.Sprintf("%dG", b>>30)
	case b%(1<<20) == 0:
		return fmt.Sprintf("%dM", b>>20)
	case b%(1<<10) == 0:
		return fmt.Sprintf("%dK", b>>10)
	}
	return fmt.Sprintf("%d", b)
}

// parseRestarts reads ofs-sandbox-restart's value.
func parseRestarts(s string) (int, bool) {
	switch strings.ToLower(s) {
	case "always":
		return SandboxAlways, true
	case "never", "no", "0":
		return 0, true
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

func validHostname(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
