package initramfs

import (
	"sort"

	"github.com/ofsroot/ofsroot/pkg/kmod"
)

// filesystemModules names the root filesystem types each filesystem
// module mounts. The init loads such a module, and the modules only it
// needs, once it has read the root's superblock, and only if the root is
// of one of its types: an ext4 root does not pay for squashfs.
var filesystemModules = map[string][]string{
	"ext4":     {"ext4", "ext3", "ext2"},
	"ext2":     {"ext2"},
	"squashfs": {"squashfs"},
	"erofs":    {"erofs"},
	"btrfs":    {"btrfs"},
	"xfs":      {"xfs"},
	"f2fs":     {"f2fs"},
	"vfat":     {"vfat"},
	"exfat":    {"exfat"},
	"jfs":      {"jfs"},
	"nilfs2":   {"nilfs2"},
}

// rootFSOnly returns, by module name, the root filesystem types each
// module of mods (in load order, dependencies first) is wanted for: a
// filesystem module's own types, and for a module that the board did not
// ask for itself and that only such modules depend on, the union of
// theirs. Modules not in the map are loaded for every root.
func rootFSOnly(mods []kmod.Module) map[string][]string {
	users := map[string][]string{}
	for _, m := range mods {
		if m.Info == nil {
			continue
		}
		for _, d := range m.Info.Depends {
			users[d] = append(users[d], m.Name)
		}
	}
	tags := map[string][]string{}
	for i := len(mods) - 1; i >= 0; i-- {
		m := mods[i]
		if t, ok := zramModuleTags[m.Name]; ok { // zram.go
			tags[m.Name] = t
			continue
		}
		if t, ok := filesystemModules[m.Name]; ok {
			tags[m.Name] = t
			continue
		}
		if m.Reason == "requested" || len(users[m.Name]) == 0 {
			continue
		}
		set := map[string]bool{}
		all := true
		for _, u := range users[m.Name] {
			t, ok := tags[u]
			if !ok {
				all = false
				break
			}
			for _, x := range t {
				set[x] = true
			}
		}
		if !all {
			continue
		}
		var t []string
		for x := range set {
			t = append(t, x)
		}
		sort.Strings(t)
		tags[m.Name] = t
	}
	return tags
}

// stripModule is Options.StripModules for one module file.
func stripModule(data []byte) ([]byte, error) {
	data, _, err := kmod.StripSignature(data)
	if err != nil {
		return nil, err
	}
	data, _, err = kmod.StripBTF(data)
	return data, err
}
