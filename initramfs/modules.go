package initramfs

import (
	"fmt"
	"strings"

	"github.com/ofsroot/ofsroot/pkg/kmod"
)

// leaveOut drops the modules named in without from mods, recording them
// in res.Omitted and warning about kept modules that need them.
func leaveOut(mods []kmod.Module, without []string, boardName string, res *Result) ([]kmod.Module, error) {
	drop := map[string]bool{}
	for _, w := range without {
		n := kmod.NormalizeName(strings.TrimSpace(w))
		if !slicesContainsModule(mods, n) {
			var names []string
			for _, m := range mods {
				names = append(names, m.Name)
			}
			return nil, fmt.Errorf("cannot leave out module %q: it is not among the modules for board %s (%s)", w, boardName, strings.Join(names, " "))
		}
		drop[n] = true
	}
	var kept []kmod.Module
	for _, m := range mods {
		if drop[m.Name] {
			res.Omitted = append(res.Omitted, m.Name)
			continue
		}
		for _, d := range m.Info.Depends {
			if drop[d] {
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s needs %s, which is left out: loading %s will fail", m.Name, d, m.Name))
			}
		}
		kept = append(kept, m)
	}
	return kept, nil
}

func slicesContainsModule(mods []kmod.Module, name string) bool {
	name = kmod.NormalizeName(name)
	for _, m := range mods {
		if m.Name == name {
			return true
		}
	}
	return false
}
