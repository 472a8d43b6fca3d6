package overlaydiff_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ofsroot/ofsroot/pkg/overlaydiff"
)

// What a RAM layer holds compared with the real root: here two folders
// standing in for /mnt/root-RO and /mnt/root-RW/upper. (Deletions are
// whiteouts, 0/0 character devices, which need root to make.)
func ExampleDiff() {
	dir, _ := os.MkdirTemp("", "overlaydiff-example-")
	defer os.RemoveAll(dir)
	lower, upper := filepath.Join(dir, "lower"), filepath.Join(dir, "upper")
	for _, d := range []string{lower + "/etc", upper + "/etc", upper + "/var/log"} {
		os.MkdirAll(d, 0o755)
	}
	os.WriteFile(lower+"/etc/hostname", []byte("factory\n"), 0o644)
	os.WriteFile(upper+"/etc/hostname", []byte("field-unit-7\n"), 0o644)
	os.WriteFile(upper+"/var/log/app.log", []byte("started\n"), 0o644)

	changes, err := overlaydiff.Diff(lower, upper, overlaydiff.Options{})
	if err != nil {
		panic(err)
	}
	for _, c := range changes {
		fmt.Println(c)
	}
	// Output:
	// M /etc/hostname (content)
	// A /var/
	// A /var/log/
	// A /var/log/app.log
}
