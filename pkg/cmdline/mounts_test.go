package cmdline

import (
	"path"
	"reflect"
	"strings"
	"testing"
)

func TestMountWords(t *testing.T) {
	P, R, K := MountProtect, MountRO, MountKeep
	for _, tc := range []struct {
		line  string
		want  []MountRule
		warns int
	}{
		{"", nil, 0},
		{"ofs-mounts=/boot:protect,/var/log:ro,/data:keep", []MountRule{{"/boot", P}, {"/var/log", R}, {"/data", K}}, 0},
		{"ofs-mounts=/boot:PROTECT ofs-mounts=/srv/:ro,/boot:keep", []MountRule{{"/boot", K}, {"/srv", R}}, 0},
		{"ofs-mounts=/var//log/../log:ro", []MountRule{{"/var/log", R}}, 0},
		{"ofs-mounts=/:protect", nil, 1},
		{"ofs-mounts=boot:protect", nil, 1},
		{"ofs-mounts=/boot", nil, 1},
		{"ofs-mounts=/boot:overlay,/data:ro", []MountRule{{"/data", R}}, 1},
		{"ofs-mounts=/a\x01:ro", nil, 1},
		{"ofs-mounts=", nil, 0},
	} {
		c, warns := Parse(tc.line)
		if !reflect.DeepEqual(c.Mounts, tc.want) {
			t.Errorf("%q: mounts %v, want %v", tc.line, c.Mounts, tc.want)
		}
		if len(warns) != tc.warns {
			t.Errorf("%q: warnings %v, want %d", tc.line, warns, tc.warns)
		}
		for _, w := range warns {
			if w.Word != "ofs-mounts" {
				t.Errorf("%q: warning names %q", tc.line, w.Word)
			}
		}
		if c.Overlay != OverlayOff || c.MountsRecurse {
			t.Errorf("%q: the policy words changed the protection: %v recurse %v", tc.line, c.Overlay, c.MountsRecurse)
		}
	}
}

func TestAliases(t *testing.T) {
	for _, tc := range []struct {
		line       string
		mode       OverlayMode
		recurse    bool
		overridden bool
		unknown    bool
		notes      int
		modeHas    string
	}{
		{"overlayroot=tmpfs", OverlayOn, true, false, false, 0, "but vfat"},
		{"overlayroot=tmpfs:recurse=0", OverlayOn, false, false, false, 0, "root only"},
		{"overlayroot=tmpfs:swap=1,recurse=0", OverlayOn, false, false, false, 1, "root only"},
		{"overlayroot=tmpfs:recurse=1,debug=1", OverlayOn, true, false, false, 0, "recurse=1"},
		{"overlayroot=TMPFS:frobnicate", OverlayOn, true, false, false, 1, "recurse=1"},
		{"overlayroot=disabled", OverlayOff, false, false, false, 0, "overlayfs=no"},
		{"overlayroot=device:dev=/dev/vdb,recurse=0", OverlayOn, false, false, false, 1, "root only"},
		{"overlayroot=crypt:dev=/dev/vdb", OverlayOn, true, false, false, 1, "recurse=1"},
		{"overlayroot=/dev/vdb", OverlayOn, true, false, false, 1, "recurse=1"},
		{"overlayroot=LABEL=upper", OverlayOn, false, false, true, 0, "fails closed"},
		{"overlayroot=tmpsf", OverlayOn, false, false, true, 0, "fails closed"},
		{"overlayroot=", OverlayOff, false, false, false, 0, ""},
		{"systemd.volatile=overlay", OverlayOn, false, false, false, 0, "other mounts as fstab says"},
		{"systemd.volatile=yes", OverlayOn, false, false, false, 0, "tmpfs root"},
		{"systemd.volatile=no", OverlayOff, false, false, false, 0, "overlayfs=no"},
		{"systemd.volatile=state", OverlayOff, false, false, false, 0, "/var"},
		{"systemd.volatile=sometimes", OverlayOn, false, false, true, 0, "fails closed"},
		// overlayfs= wins, before or after the alias.
		{"overlayroot=tmpfs overlayfs=no", OverlayOff, false, true, false, 0, "overlayfs=no is given too"},
		{"overlayfs=no systemd.volatile=overlay", OverlayOff, false, true, false, 0, "overlayfs=no is given too"},
		{"overlayroot=disabled overlayfs=yes", OverlayOn, false, true, false, 0, "overlayfs=yes is given too"},
		{"overlayroot=tmpsf overlayfs=0", OverlayOff, false, true, false, 0, "given too"},
		// The last alias word decides.
		{"overlayroot=tmpfs systemd.volatile=no", OverlayOff, false, false, false, 0, "overlayfs=no"},
		{"systemd.volatile=no overlayroot=tmpfs:recurse=0", OverlayOn, false, false, false, 0, "root only"},
		// Words after -- are the real init's.
		{"-- overlayroot=tmpfs", OverlayOff, false, false, false, 0, ""},
	} {
		c, warns := Parse(tc.line)
		a := c.Alias
		if c.Overlay != tc.mode || c.MountsRecurse != tc.recurse || a.Overridden != tc.overridden || a.Unknown != tc.unknown || len(a.Notes) != tc.notes {
			t.Errorf("%q: overlay %v recurse %v alias %+v; want %v recurse %v overridden %v unknown %v %d notes",
				tc.line, c.Overlay, c.MountsRecurse, a, tc.mode, tc.recurse, tc.overridden, tc.unknown, tc.notes)
		}
		if !strings.Contains(a.Mode, tc.modeHas) {
			t.Errorf("%q: mode %q lacks %q", tc.line, a.Mode, tc.modeHas)
		}
		if (len(warns) > 0) != tc.unknown {
			t.Errorf("%q: warnings %v", tc.line, warns)
		}
		if tc.modeHas == "" && a.Word != "" {
			t.Errorf("%q: alias recorded: %+v", tc.line, a)
		}
	}
}

func TestConfVars(t *testing.T) {
	conf := `# comment
BOARD=""
MOUNTS="/boot:protect /var/log:ro"
export COMPRESS=zstd # a comment
CMDLINE='ofs-rescue=reboot x'
BROKEN="unterminated
1BAD=x
MOUNTS="/boot:keep /var/log:ro"
`
	got := ConfVars([]byte(conf))
	want := map[string]string{"BOARD": "", "MOUNTS": "/boot:keep /var/log:ro", "COMPRESS": "zstd", "CMDLINE": "ofs-rescue=reboot x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ConfVars: %q, want %q", got, want)
	}
	rules, problems := ParseMountRules(got["MOUNTS"])
	if len(problems) > 0 || !reflect.DeepEqual(rules, []MountRule{{"/boot", MountKeep}, {"/var/log", MountRO}}) {
		t.Errorf("rules %v problems %v", rules, problems)
	}
	merged := MergeMountRules(rules, []MountRule{{"/var/log", MountKeep}, {"/srv", MountProtect}})
	if !reflect.DeepEqual(merged, []MountRule{{"/boot", MountKeep}, {"/var/log", MountKeep}, {"/srv", MountProtect}}) {
		t.Errorf("merged %v", merged)
	}
}

// checkMounts is the fuzzer's invariant for the per-mount words and the
// migration aliases.
func checkMounts(t *testing.T, line string, c Config) {
	seen := map[string]bool{}
	for _, r := range c.Mounts {
		if r.Mount == "/" || !strings.HasPrefix(r.Mount, "/") || path.Clean(r.Mount) != r.Mount || seen[r.Mount] {
			t.Fatalf("bad or repeated mount rule %+v in %v", r, c.Mounts)
		}
		if _, ok := ParseMountPolicy(r.Policy.String()); !ok {
			t.Fatalf("policy %d", r.Policy)
		}
		seen[r.Mount] = true
	}
	if c.MountsRecurse && !c.Overlay.Protected() {
		t.Fatalf("recurse without a protected root: %+v", c)
	}
	// Fail closed: an alias word decides only without overlayfs=, and
	// only its off values leave the root unprotected.
	overlayfs, alias := false, ""
	for _, w := range Split(line) {
		if w == "--" {
			break
		}
		k, v, _ := strings.Cut(w, "=")
		switch {
		case k == "overlayfs":
			overlayfs = true
		case (k == "overlayroot" || k == "systemd.volatile") && v != "":
			alias = strings.ToLower(v)
		}
	}
	if overlayfs || alias == "" {
		return
	}
	off := alias == "disabled" || alias == "state"
	if on, ok := ParseBool(alias); ok && !on {
		off = true
	}
	if !off && !c.Overlay.Protected() {
		t.Fatalf("alias %q left the root unprotected", alias)
	}
}
