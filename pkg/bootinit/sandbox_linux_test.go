package bootinit

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/cmdline"
	"github.com/ofsroot/ofsroot/pkg/sandbox"
)

func TestSandboxConfig(t *testing.T) {
	root := t.TempDir()
	cfg, _ := cmdline.Parse("overlayfs=sandbox ofs-sandbox-net=host ofs-sandbox-dev=ttyS1")
	c := sandboxConfig(cfg, root, "/sbin/init", []string{"single"}, []string{"TERM=linux"})
	want := sandbox.Config{
		Root: root, Init: "/sbin/init", Args: []string{"single"}, Env: []string{"TERM=linux"},
		Hostname: sandbox.DefaultHostname, Net: sandbox.NetHost, Devices: []string{"/dev/ttyS1"}, Console: "/dev/console",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	// The root's /etc/hostname names the sandbox unless the command line does.
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("drone\n"), 0o644)
	if c := sandboxConfig(cfg, root, "/sbin/init", nil, nil); c.Hostname != "drone" {
		t.Errorf("hostname %q, want drone (from /etc/hostname)", c.Hostname)
	}
	cfg.SandboxHostname = "fw1"
	if c := sandboxConfig(cfg, root, "/sbin/init", nil, nil); c.Hostname != "fw1" || c.Net != sandbox.NetHost {
		t.Errorf("hostname %q, want fw1", c.Hostname)
	}
}
