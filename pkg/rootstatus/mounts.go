package rootstatus

import (
	"fmt"
	"io"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/mountfs"
)

// Mount is one fstab mount's per-mount policy result, as the init
// recorded it, with what is mounted there now.
type Mount struct {
	bootstatus.Mount
	// Now is the filesystem type mounted at the mount point now ("" when
	// nothing is).
	Now string `json:"now,omitempty"`
}

// evaluateMounts copies the status file's per-mount results and warns
// when a mount the init protected is no longer its overlay (unmounted,
// or something mounted over it) or a read-only one is mounted writable.
func evaluateMounts(r *Report, st *bootstatus.Status, mounts []mountfs.MountInfo) {
	if st == nil {
		return
	}
	for _, m := range st.Mounts {
		x := Mount{Mount: m}
		cur, ok := mountfs.MountAt(mounts, m.Mount)
		if ok {
			x.Now = cur.FSType
		}
		switch {
		case m.Result == "protected" && (!ok || cur.FSType != "overlay"):
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s was protected at boot, but its overlay is not on top now (%s): writes there may reach %s", m.Mount, describeNow(x.Now), m.Spec))
		case (m.Result == "read-only" || m.Result == "read-only (protect failed)") && ok && !cur.ReadOnly():
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s was made read-only in fstab, but is mounted read-write now", m.Mount))
		}
		r.Mounts = append(r.Mounts, x)
	}
}

func describeNow(fstype string) string {
	if fstype == "" {
		return "nothing mounted there"
	}
	return fstype + " mounted there"
}

// mountsText writes one line per mount with a policy other than keep.
func (r *Report) mountsText(w io.Writer) {
	for _, m := range r.Mounts {
		if m.Policy == bootstatus.MountKeep && m.Result == "kept" {
			continue
		}
		fmt.Fprintf(w, "mount:      %s %s (%s from %s)\n", m.Mount.Mount, m.Result, m.Policy, m.From)
	}
}
