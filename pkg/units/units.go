// Package units formats sizes for people.
package units

import "fmt"

// Bytes renders n in binary units, e.g. "91.5 MiB"; below 1 KiB, "512 B".
func Bytes[T ~int64 | ~uint64 | ~int](n T) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", int64(n))
	}
	div, exp := T(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
