package rootstatus

import (
	"errors"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/zram"
)

const miZram = `21 1 0:20 / / rw,relatime - overlay overlayfs-root rw,lowerdir=/mnt/root-RO,upperdir=/mnt/root-RW/upper,workdir=/mnt/root-RW/work
23 21 254:0 / /mnt/root-RO ro,relatime - ext4 /dev/vda ro
24 21 251:0 / /mnt/root-RW rw,relatime - ext4 /dev/zram0 rw,discard
`

// TestEvaluateZram: a zram layer's compression ratio and RAM against its
// cap are in the report and its text; a zram layer that gave way to
// the tmpfs one is degraded with the init's reason, / still protected.
func TestEvaluateZram(t *testing.T) {
	stat := &zram.Stat{Device: "/dev/zram0", Algorithm: "zstd", Ratio: 3.25, DataBytes: 13 << 20, ComprBytes: 4 << 20, MemUsedBytes: 5 << 20, MemLimitBytes: 100 << 20, MemPercent: 5}
	var asked []string
	zr := func(src string) (*zram.Stat, error) {
		asked = append(asked, src)
		if src == "/dev/zram0" {
			return stat, nil
		}
		return nil, nil
	}
	prot := &bootstatus.Status{Mode: bootstatus.Protected, Upper: &bootstatus.Upper{Kind: bootstatus.UpperZram, Asked: "zram:zstd", Device: "/dev/zram0", FSType: "ext4"}}
	r, err := Evaluate(Inputs{Mountinfo: strings.NewReader(miZram), Status: prot, Statfs: statfs, Zram: zr})
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != bootstatus.Protected || r.RAM == nil || r.RAM.Zram != stat || r.RAM.Source != "/dev/zram0" || len(r.Warnings) != 0 {
		t.Fatalf("report %+v ram %+v warnings %q", r, r.RAM, r.Warnings)
	}
	var b strings.Builder
	r.Text(&b)
	if !strings.Contains(b.String(), "zram:       zstd, compression ratio 3.25 (13.0 MiB of data in 4.0 MiB); RAM used 5.0 MiB, 5.0% of its cap of 100.0 MiB\n") {
		t.Errorf("text:\n%s", b.String())
	}

	reason := "zram layer ofs-upper=zram not built: no zram device"
	fell := &bootstatus.Status{Mode: bootstatus.Degraded, Reasons: []string{reason}, Upper: &bootstatus.Upper{Kind: bootstatus.UpperRAM, Asked: "zram", FSType: "tmpfs", Fallback: reason}}
	r, err = Evaluate(Inputs{Mountinfo: strings.NewReader(miProtected), Status: fell, Statfs: statfs, Zram: zr})
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != bootstatus.Degraded || !r.Protected || r.RAM == nil || r.RAM.Zram != nil || len(r.Reasons) != 1 || r.Reasons[0] != reason || len(r.Warnings) != 0 {
		t.Errorf("fallback: mode %s protected %v ram %+v reasons %q warnings %q", r.Mode, r.Protected, r.RAM, r.Reasons, r.Warnings)
	}
	if strings.Join(asked, ",") != "/dev/zram0,tmpfs-root" {
		t.Errorf("zram asked about %q", asked)
	}

	r, err = Evaluate(Inputs{Mountinfo: strings.NewReader(miZram), Status: prot, Statfs: statfs, Zram: func(string) (*zram.Stat, error) { return nil, errors.New("no mm_stat") }})
	if err != nil || r.RAM == nil || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "zram layer /dev/zram0: no mm_stat") {
		t.Errorf("unreadable device: %v, %+v", err, r)
	}
}
