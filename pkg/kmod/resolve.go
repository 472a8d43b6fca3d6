package kmod

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Module is one module to load, as Resolve placed it.
type Module struct {
	// Name is the normalised module name, e.g. "crc32c_generic".
	Name string
	// Path is the module file relative to the tree's Dir, slash
	// separated, e.g. "kernel/crypto/crc32c_generic.ko".
	Path string
	// File is the module file on the host.
	File string
	// Info is the module's .modinfo.
	Info *ModInfo
	// Reason says why the module is in the list: "requested",
	// "needed by ext4" or "soft dependency of ext4 (crypto-crc32c)".
	Reason string
}

// Plan is the outcome of resolving a list of modules.
type Plan struct {
	// Modules are in load order: every module after the modules it
	// depends on and after its soft "pre:" dependencies.
	Modules []Module
	// Builtin are requested names the kernel has built in: nothing to
	// load for them.
	Builtin []string
	// Notes are things worth telling whoever builds the image, e.g. a
	// soft dependency no module provides.
	Notes []string
}

// Names returns the module names of p.Modules in order.
func (p *Plan) Names() []string {
	out := make([]string, len(p.Modules))
	for i, m := range p.Modules {
		out[i] = m.Name
	}
	return out
}

// UnknownModuleError is returned for a requested name that is neither a
// module file, a built-in module nor an alias of one.
type UnknownModuleError struct {
	Name        string
	Dir         string
	Suggestions []string
}

func (e *UnknownModuleError) Error() string {
	msg := fmt.Sprintf("no module %q in %s (not a module file, not built in, no module has that alias)", e.Name, e.Dir)
	if len(e.Suggestions) > 0 {
		msg += "; did you mean " + strings.Join(e.Suggestions, ", ") + "?"
	}
	return msg
}

// MissingDependencyError is returned when a module depends on one that is
// neither a module file nor built in: the tree is incomplete.
type MissingDependencyError struct {
	Module, Dependency, Dir string
}

func (e *MissingDependencyError) Error() string {
	return fmt.Sprintf("module %s depends on %s, which is neither a module file in %s nor listed in modules.builtin: the module tree is incomplete",
		e.Module, e.Dependency, e.Dir)
}

// CycleError is returned when modules depend on each other in a circle.
type CycleError struct {
	// Cycle starts and ends with the same module.
	Cycle []string
}

func (e *CycleError) Error() string {
	return "module dependency cycle: " + strings.Join(e.Cycle, " -> ")
}

// Resolve returns the modules to load for names, in load order, with
// dependencies first; see (*Tree).Plan.
func Resolve(t *Tree, names []string) ([]Module, error) {
	p, err := t.Plan(names)
	if err != nil {
		return nil, err
	}
	return p.Modules, nil
}

// Plan resolves names (module names, '-' and '_' alike, or aliases) into
// a load order. The order is deterministic: a depth-first walk of names
// in the given order, visiting each module's soft "pre:" dependencies,
// then its depends= in .modinfo order, then the module itself; no module
// appears twice.
//
// Dependencies built into the kernel (modules.builtin) are satisfied. A
// soft dependency names a module or an alias: it is satisfied by a
// built-in module; else by the requested or already placed modules
// that provide it (so a board that lists crc32c_generic does not also
// get crc32c_intel); else every module providing it is added, as
// modprobe does. A soft dependency nothing provides is noted and
// skipped; "post:" soft dependencies are noted and not followed.
func (t *Tree) Plan(names []string) (*Plan, error) {
	r := &resolver{t: t, plan: &Plan{}, done: map[string]bool{}, onStack: map[string]bool{}, requested: map[string]bool{}}
	var targets []string
	for _, raw := range names {
		name := NormalizeName(strings.TrimSpace(raw))
		switch {
		case name == "":
			continue
		case t.files[name] != "":
			targets = append(targets, name)
		case t.builtin[name]:
			r.plan.Builtin = appendNew(r.plan.Builtin, name)
		case t.builtinProvides(raw):
			r.plan.Builtin = appendNew(r.plan.Builtin, raw)
		default:
			providers, err := t.Providers(raw)
			if err != nil {
				return nil, err
			}
			if len(providers) == 0 {
				return nil, &UnknownModuleError{Name: raw, Dir: t.Dir, Suggestions: t.suggest(name)}
			}
			targets = append(targets, providers...)
		}
	}
	for _, n := range targets {
		r.requested[n] = true
	}
	for _, n := range targets {
		if err := r.visit(n, "requested"); err != nil {
			return nil, err
		}
	}
	return r.plan, nil
}

type resolver struct {
	t         *Tree
	plan      *Plan
	done      map[string]bool
	onStack   map[string]bool
	stack     []string
	requested map[string]bool
}

func (r *resolver) visit(name, reason string) error {
	if r.done[name] {
		return nil
	}
	if r.onStack[name] {
		i := len(r.stack) - 1
		for i > 0 && r.stack[i] != name {
			i--
		}
		return &CycleError{Cycle: append(append([]string{}, r.stack[i:]...), name)}
	}
	if r.requested[name] {
		reason = "requested"
	}
	r.onStack[name] = true
	r.stack = append(r.stack, name)
	defer func() {
		r.onStack[name] = false
		r.stack = r.stack[:len(r.stack)-1]
	}()

	mi, err := r.t.ModInfo(name)
	if err != nil {
		return err
	}
	var after []string // soft providers that must wait: see below
	for _, soft := range mi.SoftPre {
		providers, err := r.softProviders(name, soft)
		if err != nil {
			return err
		}
		for _, p := range providers {
			if r.onStack[p] {
				// A soft edge back into the walk: it is soft, so
				// the module is loaded after, not before.
				r.plan.Notes = append(r.plan.Notes, fmt.Sprintf("%s: soft dependency %s (%s) is on a cycle; not placed before it", name, soft, p))
				continue
			}
			err := r.visit(p, fmt.Sprintf("soft dependency of %s (%s)", name, soft))
			var cycle *CycleError
			if errors.As(err, &cycle) && slices.Contains(cycle.Cycle, name) {
				// The cycle runs through this soft edge: drop the
				// edge, and load the provider after the module.
				r.plan.Notes = append(r.plan.Notes, fmt.Sprintf("%s: soft dependency %s (%s) would close a cycle (%s); placed after it",
					name, soft, p, strings.Join(cycle.Cycle, " -> ")))
				after = append(after, p)
				continue
			}
			if err != nil {
				return err
			}
		}
	}
	for _, dep := range mi.Depends {
		switch {
		case r.t.files[dep] != "":
			if err := r.visit(dep, "needed by "+name); err != nil {
				return err
			}
		case r.t.builtin[dep]:
		default:
			return &MissingDependencyError{Module: name, Dependency: dep, Dir: r.t.Dir}
		}
	}
	for _, soft := range mi.SoftPost {
		r.plan.Notes = append(r.plan.Notes, fmt.Sprintf("%s: soft post: dependency %s not followed", name, soft))
	}
	rel := r.t.files[name]
	r.plan.Modules = append(r.plan.Modules, Module{
		Name:   name,
		Path:   rel,
		File:   filepath.Join(r.t.Dir, filepath.FromSlash(rel)),
		Info:   mi,
		Reason: reason,
	})
	r.done[name] = true
	for _, p := range after {
		if err := r.visit(p, "soft dependency of "+name+", placed after it"); err != nil {
			return err
		}
	}
	return nil
}

// softProviders returns the modules to place before module for its soft
// dependency soft, which is a module name or an alias.
func (r *resolver) softProviders(module, soft string) ([]string, error) {
	t := r.t
	if n := NormalizeName(soft); t.files[n] != "" {
		return []string{n}, nil
	} else if t.builtin[n] || t.builtinProvides(soft) {
		return nil, nil
	}
	// Requested or already placed modules that answer to it win.
	var chosen []string
	for _, cands := range [][]string{sortedKeys(r.requested), sortedKeys(r.done)} {
		for _, c := range cands {
			mi, err := t.ModInfo(c)
			if err != nil {
				return nil, err
			}
			for _, a := range mi.Aliases {
				if aliasMatch(a, soft) {
					chosen = appendNew(chosen, c)
					break
				}
			}
		}
	}
	if len(chosen) > 0 {
		t.sortByOrder(chosen)
		return chosen, nil
	}
	all, err := t.Providers(soft)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		r.plan.Notes = append(r.plan.Notes, fmt.Sprintf("%s: soft dependency %s: no module provides it, skipped", module, soft))
	}
	return all, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		if v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// suggest returns up to five module names close to name: within a small
// edit distance, or containing it, or contained in it.
func (t *Tree) suggest(name string) []string {
	type cand struct {
		name string
		dist int
	}
	var cands []cand
	limit := 2
	if l := len(name) / 3; l > limit {
		limit = l
	}
	all := t.Names()
	for b := range t.builtin {
		all = append(all, b)
	}
	seen := map[string]bool{}
	for _, n := range all {
		if seen[n] {
			continue
		}
		seen[n] = true
		d := editDistance(name, n)
		if d <= limit || len(name) >= 3 && (strings.Contains(n, name) || strings.Contains(name, n) && len(n) >= 3) {
			cands = append(cands, cand{n, d})
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].dist != cands[j].dist {
			return cands[i].dist < cands[j].dist
		}
		return cands[i].name < cands[j].name
	})
	var out []string
	for i := 0; i < len(cands) && i < 5; i++ {
		out = append(out, cands[i].name)
	}
	return out
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
