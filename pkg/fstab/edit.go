package fstab

import (
	"bytes"
	"strings"
)

// EditEntries returns data with every entry line for which change says
// changed replaced by the lines it returns (none: the line is dropped);
// comments, blanks, malformed lines and unchanged entries are kept as
// they were.
func EditEntries(data []byte, change func(e Entry, raw string) (lines []string, changed bool)) []byte {
	var b bytes.Buffer
	for _, l := range Parse(data) {
		if l.Entry != nil {
			if repl, ok := change(*l.Entry, l.Raw); ok {
				for _, r := range repl {
					b.WriteString(r)
					b.WriteByte('\n')
				}
				continue
			}
		}
		b.WriteString(l.Raw)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ReadOnlyLine is e as an fstab line with "ro" first in its options (rw
// and defaults dropped) and pass number 0 when it had one (a check at
// boot can write the device), the other fields as they were.
func (e Entry) ReadOnlyLine() string {
	fields := []string{e.Spec, Escape(e.File), e.VfsType, readOnlyOptions(e.MntOps)}
	if e.Freq != "" || e.PassNo != "" {
		fields = append(fields, orZero(e.Freq))
	}
	if e.PassNo != "" {
		fields = append(fields, "0")
	}
	return strings.Join(fields, " ")
}

// HasOption says whether e's options include o (a flag like "noauto" or
// "bind", or a key as in "x-systemd.automount").
func (e Entry) HasOption(o string) bool {
	for _, x := range strings.Split(e.MntOps, ",") {
		if x == o {
			return true
		}
	}
	return false
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}
