package cmdline

import (
	"reflect"
	"strings"
	"testing"
)

// TestParseSandboxWords covers overlayfs=sandbox and every ofs-sandbox-*
// word.
func TestParseSandboxWords(t *testing.T) {
	for _, tc := range []struct {
		line  string
		check func(Config) bool
	}{
		{"overlayfs=sandbox", func(c Config) bool {
			return c.Overlay == OverlaySandbox && c.OverlayWord == "sandbox" && c.Overlay.Protected() && c.Overlay.String() == "sandbox"
		}},
		{"overlayfs=SANDBOX", func(c Config) bool { return c.Overlay == OverlaySandbox }},
		{"overlayfs=sandbox overlayfs=yes", func(c Config) bool { return c.Overlay == OverlayOn && c.Overlay.Protected() }},
		{"overlayfs=no", func(c Config) bool { return !c.Overlay.Protected() }},
		{"", func(c Config) bool {
			return c.SandboxRestarts == DefaultSandboxRestarts && c.SandboxNet == "private" && c.SandboxHostname == "" && c.SandboxDevices == nil
		}},
		{"ofs-sandbox-restart=always", func(c Config) bool { return c.SandboxRestarts == SandboxAlways }},
		{"ofs-sandbox-restart=never", func(c Config) bool { return c.SandboxRestarts == 0 }},
		{"ofs-sandbox-restart=0", func(c Config) bool { return c.SandboxRestarts == 0 }},
		{"ofs-sandbox-restart=5", func(c Config) bool { return c.SandboxRestarts == 5 }},
		{"ofs-sandbox-net=host", func(c Config) bool { return c.SandboxNet == "host" }},
		{"ofs-sandbox-net=PRIVATE", func(c Config) bool { return c.SandboxNet == "private" }},
		{"ofs-sandbox-hostname=fw-1.lab", func(c Config) bool { return c.SandboxHostname == "fw-1.lab" }},
		{"ofs-sandbox-dev=ttymxc0,/dev/i2c-1,,../sda", func(c Config) bool {
			return reflect.DeepEqual(c.SandboxDevices, []string{"/dev/ttymxc0", "/dev/i2c-1"})
		}},
	} {
		c, w := Parse(tc.line)
		if len(w) != 0 {
			t.Errorf("Parse(%q): warnings %v", tc.line, w)
		}
		if !tc.check(c) {
			t.Errorf("Parse(%q) = %+v", tc.line, c)
		}
	}
}

func TestParseSandboxBadValues(t *testing.T) {
	for _, tc := range []struct {
		line string
		want string
		ok   func(Config) bool
	}{
		{"ofs-sandbox-restart=sometimes", "ofs-sandbox-restart=sometimes: not one of always, never or a count; using 3", func(c Config) bool { return c.SandboxRestarts == DefaultSandboxRestarts }},
		{"ofs-sandbox-restart=-2", "using 3", func(c Config) bool { return c.SandboxRestarts == DefaultSandboxRestarts }},
		{"ofs-sandbox-net=bridge", "ofs-sandbox-net=bridge: not one of private, host; using private", func(c Config) bool { return c.SandboxNet == "private" }},
		{"ofs-sandbox-hostname=a/b", "ofs-sandbox-hostname=a/b: not a host name", func(c Config) bool { return c.SandboxHostname == "" }},
		{"ofs-sandbox-hostname=", "not a host name", func(c Config) bool { return c.SandboxHostname == "" }},
		{"overlayfs=sandboxes", "overlayfs=sandboxes: not one of yes/no, on/off, true/false, 1/0, sandbox", func(c Config) bool { return c.Overlay == OverlayOn && c.OverlayUnknown }}, // fails closed
	} {
		c, w := Parse(tc.line)
		if len(w) != 1 {
			t.Errorf("Parse(%q): %d warnings %v, want 1", tc.line, len(w), w)
			continue
		}
		if !strings.Contains(w[0].String(), tc.want) {
			t.Errorf("Parse(%q) warning %q, want it to contain %q", tc.line, w[0], tc.want)
		}
		if !tc.ok(c) {
			t.Errorf("Parse(%q) did not fall back to the default: %+v", tc.line, c)
		}
	}
}
