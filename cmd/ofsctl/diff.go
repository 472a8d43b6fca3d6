package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/cli"
	"github.com/ofsroot/ofsroot/pkg/overlaydiff"
)

func init() {
	program.Commands["diff"] = cli.Command{
		Summary: "what the RAM layer holds compared with the real root: added, changed, deleted, opaque",
		Run:     runDiff,
	}
}

// diffReport is diff's JSON output.
type diffReport struct {
	Lower   string               `json:"lower"`
	Upper   string               `json:"upper"`
	Changes []overlaydiff.Change `json:"changes"`
}

func layerFlags(fs interface {
	String(name, value, usage string) *string
}) (lower, upper *string) {
	lower = fs.String("lower", bootstatus.ReadOnlyLayer, "the lower layer (the real root)")
	upper = fs.String("upper", bootedUpper(), "the upper layer (the booted overlay's upper folder: the RAM layer's, or a persistent layer's)")
	return lower, upper
}

// bootedUpper is the booted overlay's upper folder as the init's status
// says (a persistent layer's is /mnt/root-RW/DIR/upper), else the RAM
// layer's.
func bootedUpper() string {
	st, err := bootstatus.ReadFile(bootstatus.Path)
	if err == nil && st.Overlay != nil && strings.HasPrefix(st.Overlay.Upper, bootstatus.WritableLayer+"/") {
		return st.Overlay.Upper
	}
	return bootstatus.WritableLayer + "/upper"
}

// layerIgnore leaves out the protected root's own layer mount points,
// which the init makes in the RAM layer at every boot.
func layerIgnore(lower, upper string) []string {
	if lower == bootstatus.ReadOnlyLayer && upper == bootedUpper() {
		return []string{bootstatus.ReadOnlyLayer, bootstatus.WritableLayer}
	}
	return nil
}

func runDiff(args []string, stdout, stderr io.Writer) error {
	fs := program.FlagSet("diff", "[--json] [--lower DIR --upper DIR] [PATH...]", stderr)
	asJSON := fs.Bool("json", false, "print the changes as JSON")
	lower, upper := layerFlags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	changes, err := overlaydiff.Diff(*lower, *upper, overlaydiff.Options{Paths: fs.Args(), Ignore: layerIgnore(*lower, *upper)})
	if err != nil {
		return fmt.Errorf("%w (is the root protected? see ofsctl status)", err)
	}
	if *asJSON {
		if changes == nil {
			changes = []overlaydiff.Change{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(diffReport{Lower: *lower, Upper: *upper, Changes: changes})
	}
	for _, c := range changes {
		fmt.Fprintln(stdout, c)
	}
	return nil
}
