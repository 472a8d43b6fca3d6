package bootinit

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// ParseMemTotal reads MemTotal, in bytes, from /proc/meminfo's text.
func ParseMemTotal(meminfo string) (uint64, error) { return ParseMeminfo(meminfo, "MemTotal") }

// ParseMeminfo reads one field (MemTotal, MemAvailable...), in bytes,
// from /proc/meminfo's text.
func ParseMeminfo(meminfo, field string) (uint64, error) {
	sc := bufio.NewScanner(strings.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == field+":" {
			n, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s %q: %w", field, f[1], err)
			}
			if len(f) >= 3 && f[2] != "kB" {
				return 0, fmt.Errorf("%s unit %q, want kB", field, f[2])
			}
			return n * 1024, nil
		}
	}
	return 0, fmt.Errorf("no %s line", field)
}
