package kmod

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// ModulesDirs are the folders, relative to a package root, that hold
// lib/modules/VERSION trees: Debian 12 uses lib/modules, packages built
// after the /usr merge use usr/lib/modules.
var ModulesDirs = []string{"lib/modules", "usr/lib/modules"}

// ErrNoTree is wrapped by FindTrees and OpenTree when a root holds no
// module tree.
var ErrNoTree = errors.New("no kernel module tree")

// FindTrees returns the lib/modules/VERSION folders under root (the
// folder `dpkg -x` made of a linux-image package), sorted.
func FindTrees(root string) ([]string, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a folder", root)
	}
	var dirs []string
	var seenDirs []os.FileInfo
	for _, md := range ModulesDirs {
		entries, err := os.ReadDir(filepath.Join(root, md))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
	entry:
		for _, e := range entries {
			p := filepath.Join(root, md, e.Name())
			fi, err := os.Stat(p)
			if err != nil || !fi.IsDir() {
				continue
			}
			// On a merged-/usr root, lib is a link to usr/lib: the same
			// tree is reached twice.
			for _, seen := range seenDirs {
				if os.SameFile(seen, fi) {
					continue entry
				}
			}
			seenDirs = append(seenDirs, fi)
			dirs = append(dirs, p)
		}
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("%w in %s: it has no %s/VERSION folder; give a linux-image .deb or the folder `dpkg -x` made of one",
			ErrNoTree, root, strings.Join(ModulesDirs, "/VERSION or "))
	}
	sort.Strings(dirs)
	return dirs, nil
}

// Tree is one kernel's module tree.
type Tree struct {
	// Dir is the lib/modules/VERSION folder.
	Dir string
	// Version is the kernel release, the name of Dir.
	Version string

	files   map[string]string // module name -> path relative to Dir
	order   map[string]int    // module name -> line in modules.order
	builtin map[string]bool   // modules built into the kernel
	// builtinAliases are the alias patterns of built-in modules
	// (modules.builtin.modinfo).
	builtinAliases []aliasEntry

	mu      sync.Mutex
	info    map[string]*ModInfo
	depmod  map[string]*ModInfo // what depmod's files say, read on first need
	aliases []aliasEntry        // every module's aliases, read on first need
	indexed bool
}

type aliasEntry struct {
	pattern, module string
}

// OpenTree indexes the module tree of the given kernel version under
// root, a package root folder. With version "", root must hold exactly
// one tree.
//
// It reads modules.builtin, modules.builtin.modinfo and modules.order
// if present, and the names of the module files; module contents are
// read later, when needed.
func OpenTree(root, version string) (*Tree, error) {
	dirs, err := FindTrees(root)
	if err != nil {
		return nil, err
	}
	var dir string
	if version == "" {
		if len(dirs) > 1 {
			var vs []string
			for _, d := range dirs {
				vs = append(vs, filepath.Base(d))
			}
			return nil, fmt.Errorf("%s holds several kernels (%s): give a folder with only one", root, strings.Join(vs, ", "))
		}
		dir = dirs[0]
	} else {
		for _, d := range dirs {
			if filepath.Base(d) == version {
				dir = d
			}
		}
		if dir == "" {
			return nil, fmt.Errorf("%w for kernel %s in %s", ErrNoTree, version, root)
		}
	}
	return openDir(dir)
}

// OpenDir indexes the lib/modules/VERSION folder dir.
func OpenDir(dir string) (*Tree, error) { return openDir(dir) }

func openDir(dir string) (*Tree, error) {
	t := &Tree{
		Dir:     dir,
		Version: filepath.Base(dir),
		files:   map[string]string{},
		order:   map[string]int{},
		builtin: map[string]bool{},
		info:    map[string]*ModInfo{},
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// Symbolic links (build, source) are not followed or indexed.
		if !d.Type().IsRegular() {
			return nil
		}
		name := NameFromPath(p)
		if name == "" {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if old, ok := t.files[name]; !ok || searchRank(rel) < searchRank(old) ||
			searchRank(rel) == searchRank(old) && rel < old {
			t.files[name] = rel
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(t.files) == 0 {
		return nil, fmt.Errorf("%s has no module files (%s)", dir, strings.Join(Suffixes, ", "))
	}
	if err := t.readLines("modules.builtin", func(i int, line string) {
		if n := NameFromPath(line); n != "" {
			t.builtin[n] = true
		}
	}); err != nil {
		return nil, err
	}
	if err := t.readLines("modules.order", func(i int, line string) {
		if n := NameFromPath(line); n != "" {
			if _, ok := t.order[n]; !ok {
				t.order[n] = i
			}
		}
	}); err != nil {
		return nil, err
	}
	data, err := readFile(filepath.Join(dir, "modules.builtin.modinfo"), maxDepmodFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	// Records are "module.key=value", each ending in NUL.
	for _, rec := range bytes.Split(data, []byte{0}) {
		mk, value, ok := strings.Cut(string(rec), "=")
		mod, key, ok2 := strings.Cut(mk, ".")
		if ok && ok2 && key == "alias" {
			t.builtinAliases = append(t.builtinAliases, aliasEntry{value, NormalizeName(mod)})
			t.builtin[NormalizeName(mod)] = true
		}
	}
	return t, nil
}

// searchRank orders duplicate module files the way depmod's default
// search does: updates/ first, then other folders, then the kernel's own.
func searchRank(rel string) int {
	switch {
	case strings.HasPrefix(rel, "updates/"):
		return 0
	case strings.HasPrefix(rel, "kernel/"):
		return 2
	}
	return 1
}

// readLines calls fn for each non-empty line of an optional file in Dir.
func (t *Tree) readLines(name string, fn func(int, string)) error {
	f, err := openFile(filepath.Join(t.Dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(&limited{f, maxDepmodFile})
	for i := 0; sc.Scan(); i++ {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			fn(i, line)
		}
	}
	return sc.Err()
}

// Names returns the names of all module files, sorted.
func (t *Tree) Names() []string {
	names := make([]string, 0, len(t.files))
	for n := range t.files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Path returns the path of module name relative to Dir
// ("kernel/fs/ext4/ext4.ko") and whether the tree has it.
func (t *Tree) Path(name string) (string, bool) {
	p, ok := t.files[NormalizeName(name)]
	return p, ok
}

// Builtin says whether module name is built into the kernel.
func (t *Tree) Builtin(name string) bool {
	return t.builtin[NormalizeName(name)]
}

// ModInfo returns the .modinfo of module name, read once and cached.
func (t *Tree) ModInfo(name string) (*ModInfo, error) {
	name = NormalizeName(name)
	t.mu.Lock()
	mi, ok := t.info[name]
	t.mu.Unlock()
	if ok {
		return mi, nil
	}
	rel, ok := t.files[name]
	if !ok {
		return nil, fmt.Errorf("no module %s in %s", name, t.Dir)
	}
	var info ModInfo
	var err error
	if Compressed(rel) && decompressor(rel) == nil {
		// The init: the kernel decompresses modules, and depmod's
		// files tell what they need.
		info, err = t.depmodInfo(name, rel)
	} else {
		info, err = ReadModInfo(filepath.Join(t.Dir, filepath.FromSlash(rel)))
	}
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.info[name] = &info
	t.mu.Unlock()
	return &info, nil
}

// builtinProvides says whether a built-in module answers to alias.
func (t *Tree) builtinProvides(alias string) bool {
	for _, a := range t.builtinAliases {
		if aliasMatch(a.pattern, alias) {
			return true
		}
	}
	return false
}

// Providers returns the modules with an alias matching alias, in the
// kernel's build order (modules.order, as modprobe would try them). The
// first call reads every module's .modinfo.
func (t *Tree) Providers(alias string) ([]string, error) {
	if err := t.indexAliases(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, a := range t.aliases {
		if !seen[a.module] && aliasMatch(a.pattern, alias) {
			seen[a.module] = true
			out = append(out, a.module)
		}
	}
	t.sortByOrder(out)
	return out, nil
}

// sortByOrder sorts module names by their line in modules.order, names
// missing from it last and by name.
func (t *Tree) sortByOrder(names []string) {
	sort.SliceStable(names, func(i, j int) bool {
		oi, iok := t.order[names[i]]
		oj, jok := t.order[names[j]]
		switch {
		case iok && jok && oi != oj:
			return oi < oj
		case iok != jok:
			return iok
		}
		return names[i] < names[j]
	})
}

// indexAliases reads the .modinfo of every module, in parallel.
func (t *Tree) indexAliases() error {
	t.mu.Lock()
	done := t.indexed
	t.mu.Unlock()
	if done {
		return nil
	}
	names := t.Names()
	work := make(chan string)
	errs := make(chan error, len(names))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				if _, err := t.ModInfo(n); err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	var all []aliasEntry
	for _, n := range names {
		mi, _ := t.ModInfo(n)
		for _, a := range mi.Aliases {
			all = append(all, aliasEntry{a, n})
		}
	}
	t.mu.Lock()
	t.aliases, t.indexed = all, true
	t.mu.Unlock()
	return nil
}

// aliasMatch matches name against an alias pattern the way modprobe's
// fnmatch does for the patterns modules use (*, ? and [...]).
func aliasMatch(pattern, name string) bool {
	if pattern == name {
		return true
	}
	if !strings.ContainsAny(pattern, "*?[") {
		return false
	}
	// path.Match stops '*' at '/', which module aliases do not contain
	// in practice; map it out of the way to be safe.
	ok, err := path.Match(strings.ReplaceAll(pattern, "/", "\x00"), strings.ReplaceAll(name, "/", "\x00"))
	return err == nil && ok
}

// depmodInfo returns what depmod's files in Dir say about module name
// (file rel): its dependencies (modules.dep), soft dependencies
// (modules.softdep) and aliases (modules.alias). An installed system has
// them (depmod runs when a kernel is installed); a kernel package does
// not. The module's vermagic is left empty: the kernel checks it.
func (t *Tree) depmodInfo(name, rel string) (ModInfo, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.depmod == nil {
		m, err := readDepmod(t.Dir)
		if err != nil {
			return ModInfo{}, fmt.Errorf("%s is compressed, and this program leaves decompressing it to the kernel; its dependencies come from depmod's %s/modules.dep, which cannot be read: %w (run depmod %s on that system, or rebuild the initramfs for it)",
				rel, t.Dir, err, t.Version)
		}
		t.depmod = m
	}
	mi, ok := t.depmod[name]
	if !ok {
		return ModInfo{}, fmt.Errorf("%s is compressed, and depmod's %s/modules.dep does not list it: run depmod %s on that system", rel, t.Dir, t.Version)
	}
	return *mi, nil
}

// maxDepmodFile bounds what is read of each of depmod's files: the init
// reads them from a root it does not trust. Debian's largest,
// modules.alias, is about 1.5 MB.
const maxDepmodFile = 32 << 20

// maxModuleFile bounds a module file read whole (ReadModule): Debian's
// largest (amdgpu) is under 20 MB uncompressed.
const maxModuleFile = 256 << 20

// limited reads r, failing past maxDepmodFile bytes.
type limited struct {
	r    io.Reader
	left int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, fmt.Errorf("more than %d bytes, more than depmod writes", maxDepmodFile)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// readDepmod reads modules.dep (required), modules.softdep and
// modules.alias (optional) of a module tree folder, by module name.
func readDepmod(dir string) (map[string]*ModInfo, error) {
	dep, err := openFile(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	defer dep.Close()
	m, err := ParseDepmod(&limited{dep, maxDepmodFile})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dep.Name(), err)
	}
	for _, f := range []string{"modules.softdep", "modules.alias"} {
		r, err := openFile(filepath.Join(dir, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		err = ParseDepmodExtra(&limited{r, maxDepmodFile}, m)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	return m, nil
}

// ParseDepmod parses depmod's modules.dep: one line per module file,
// "kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz kernel/fs/jbd2/jbd2.ko.xz",
// into each module's name and dependencies.
func ParseDepmod(r io.Reader) (map[string]*ModInfo, error) {
	m := map[string]*ModInfo{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		file, deps, ok := strings.Cut(line, ":")
		name := NameFromPath(file)
		if !ok || name == "" {
			if err := sc.Err(); err != nil {
				return nil, err // a line cut short by a failed read
			}
			return nil, fmt.Errorf("line %d: %q is not \"MODULE-FILE: DEPENDENCIES\"", n, line)
		}
		mi := &ModInfo{Name: name}
		for _, d := range strings.Fields(deps) {
			if dn := NameFromPath(d); dn != "" {
				mi.Depends = append(mi.Depends, dn)
			}
		}
		if _, dup := m[name]; !dup {
			m[name] = mi
		}
	}
	return m, sc.Err()
}

// ParseDepmodExtra adds to m what modules.softdep ("softdep MODULE pre:
// A post: B") and modules.alias ("alias PATTERN MODULE") say; lines of
// other kinds and about modules m lacks are passed over.
func ParseDepmodExtra(r io.Reader, m map[string]*ModInfo) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		switch f[0] {
		case "softdep":
			if mi := m[NormalizeName(f[1])]; mi != nil {
				pre, post, _ := ParseSoftdep(strings.Join(f[2:], " "))
				mi.SoftPre = append(mi.SoftPre, pre...)
				mi.SoftPost = append(mi.SoftPost, post...)
			}
		case "alias":
			if mi := m[NormalizeName(f[2])]; mi != nil {
				mi.Aliases = append(mi.Aliases, f[1])
			}
		}
	}
	return sc.Err()
}
