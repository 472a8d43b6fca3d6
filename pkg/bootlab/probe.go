package bootlab

import (
	"github.com/ofsroot/ofsroot/pkg/mountfs"

	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
)

// Report is what the probe (tests/probe) printed on the console.
type Report struct {
	// T is CLOCK_MONOTONIC seconds at the probe's start.
	T       float64
	PID     int
	Args    []string
	Env     []string
	Cmdline string
	Mounts  []mountfs.MountInfo

	// RW is the statfs of /mnt/root-RW; nil if it failed (RWError).
	RW      *Statfs
	RWError string
	// MemTotal is /proc/meminfo's MemTotal in bytes.
	MemTotal uint64

	// WriteRoot is "ok" when /probe-wrote-this could be written and read
	// back, else the errno name (EROFS) or error text.
	WriteRoot string
	// InUpper and InLower are "present" or "absent" (or an error) for the
	// written file in /mnt/root-RW/upper and /mnt/root-RO.
	InUpper, InLower string
	// WriteRO is the result of writing under /mnt/root-RO: "EROFS"
	// when it is protected.
	WriteRO string

	Fstab    string
	Hostname string
	// Status is the init's status record, nil if unreadable (StatusError).
	Status      *bootstatus.Status
	StatusError string
	// Block maps block device names to their sysfs folders.
	Block map[string]string
	// Problems are the probe's error= and missing-mount= lines.
	Problems []string
	// Values holds every key's raw values, in order.
	Values map[string][]string
}

// Statfs is the part of statfs(2) the tests use.
type Statfs struct {
	Type   uint64
	Bsize  int64
	Blocks uint64
}

// Bytes is the filesystem size.
func (s Statfs) Bytes() uint64 { return s.Blocks * uint64(s.Bsize) }

// MountAt returns the mount on top at point (the last one listed), or
// false if nothing is mounted there.
func (r *Report) MountAt(point string) (mountfs.MountInfo, bool) {
	for i := len(r.Mounts) - 1; i >= 0; i-- {
		if r.Mounts[i].Point == point {
			return r.Mounts[i], true
		}
	}
	return mountfs.MountInfo{}, false
}

// ErrNoProbe is returned by ParseProbe when the console has no complete
// PROBE BEGIN ... PROBE END block.
var ErrNoProbe = errors.New("the probe did not report (no PROBE BEGIN ... PROBE END on the console)")

// ParseProbe reads the probe's report out of a console log. Lines that
// are not the probe's are ignored; a key whose value cannot be parsed is
// an error.
func ParseProbe(console string) (*Report, error) {
	lines := strings.Split(strings.ReplaceAll(console, "\r", ""), "\n")
	// The last complete block counts: a BEGIN after it (a probe cut
	// short by a reboot) starts a block that never ended.
	begin, end, open := -1, -1, -1
	for i, l := range lines {
		switch strings.TrimSpace(l) {
		case "PROBE BEGIN":
			open = i
		case "PROBE END":
			if open >= 0 {
				begin, end, open = open, i, -1
			}
		}
	}
	if begin < 0 {
		return nil, ErrNoProbe
	}
	r := &Report{Values: map[string][]string{}, Block: map[string]string{}}
	var errs []error
	for _, l := range lines[begin+1 : end] {
		i := strings.Index(l, "PROBE ")
		if i < 0 {
			continue
		}
		key, val, ok := strings.Cut(l[i+len("PROBE "):], "=")
		if !ok {
			continue
		}
		r.Values[key] = append(r.Values[key], val)
		if err := r.set(key, val); err != nil {
			errs = append(errs, fmt.Errorf("PROBE %s: %w", key, err))
		}
	}
	return r, errors.Join(errs...)
}

func (r *Report) set(key, val string) error {
	var err error
	switch key {
	case "t":
		r.T, err = strconv.ParseFloat(val, 64)
	case "pid":
		r.PID, err = strconv.Atoi(val)
	case "args":
		err = json.Unmarshal([]byte(val), &r.Args)
	case "env":
		err = json.Unmarshal([]byte(val), &r.Env)
	case "cmdline":
		r.Cmdline = val
	case "mount":
		var m mountfs.MountInfo
		if m, err = mountfs.ParseMountinfoLine(val); err == nil {
			r.Mounts = append(r.Mounts, m)
		}
	case "rw.statfs":
		r.RWError = val
	case "rw.fstype":
		if r.RW == nil {
			r.RW = &Statfs{}
		}
		r.RW.Type, err = strconv.ParseUint(strings.TrimPrefix(val, "0x"), 16, 64)
	case "rw.bsize":
		if r.RW == nil {
			r.RW = &Statfs{}
		}
		r.RW.Bsize, err = strconv.ParseInt(val, 10, 64)
	case "rw.blocks":
		if r.RW == nil {
			r.RW = &Statfs{}
		}
		r.RW.Blocks, err = strconv.ParseUint(val, 10, 64)
	case "memtotal":
		r.MemTotal, err = strconv.ParseUint(val, 10, 64)
	case "write.root":
		r.WriteRoot = val
	case "write.upper":
		r.InUpper = val
	case "write.lower":
		r.InLower = val
	case "write.ro":
		r.WriteRO = val
	case "fstab":
		r.Fstab, err = decodeBlob(val)
	case "hostname":
		r.Hostname, err = decodeBlob(val)
	case "status":
		var s string
		if s, err = decodeBlob(val); err != nil {
			r.StatusError = val
			err = nil
			break
		}
		r.Status, err = bootstatus.Read(strings.NewReader(s))
		if err != nil {
			r.StatusError = err.Error()
		}
	case "block":
		name, path, _ := strings.Cut(val, " ")
		r.Block[name] = path
	case "error", "missing-mount", "status.decode":
		r.Problems = append(r.Problems, key+": "+val)
	}
	return err
}

// decodeBlob decodes "base64:..." values; anything else is an error text.
func decodeBlob(val string) (string, error) {
	enc, ok := strings.CutPrefix(val, "base64:")
	if !ok {
		return "", errors.New(val)
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	return string(b), err
}

// ProgramRun is one program the probe ran because the command line said
// probe.run=PROGRAM,ARG...
type ProgramRun struct {
	Cmd    string
	Exit   int
	Output string
}

// Runs returns the programs the probe ran, in order.
func (r *Report) Runs() []ProgramRun {
	cmds, exits, outs := r.Values["run.cmd"], r.Values["run.exit"], r.Values["run.out"]
	var runs []ProgramRun
	for i, c := range cmds {
		pr := ProgramRun{Cmd: c, Exit: -1}
		if i < len(exits) {
			fmt.Sscan(exits[i], &pr.Exit)
		}
		if i < len(outs) {
			b, err := decodeBlob(outs[i])
			if err != nil {
				pr.Output = err.Error()
			} else {
				pr.Output = string(b)
			}
		}
		runs = append(runs, pr)
	}
	return runs
}

// GuestTime reads the kernel's timestamp at the start of a console line
// ("[   21.563826] ofsroot: ..."): seconds since the guest booted, by
// the guest's clock. Tests compare these rather than the host's wall
// clock, which a loaded host stretches.
func GuestTime(line string) (float64, bool) {
	l := strings.TrimLeft(line, "\r")
	if !strings.HasPrefix(l, "[") {
		return 0, false
	}
	end := strings.IndexByte(l, ']')
	if end < 0 {
		return 0, false
	}
	t, err := strconv.ParseFloat(strings.TrimSpace(l[1:end]), 64)
	if err != nil || t < 0 {
		return 0, false
	}
	return t, true
}
