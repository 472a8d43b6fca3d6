package kernelpkg

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Config is a kernel's build configuration, as boot/config-VERSION in
// its package (and /boot on an installed system) gives it: option names
// without the CONFIG_ prefix, to their values ("y", "m", "8", "\"str\"").
// Options that are "not set" are absent.
type Config map[string]string

// Has says whether option is built in (=y).
func (c Config) Has(option string) bool { return c[option] == "y" }

// ParseConfig parses a kernel .config: CONFIG_NAME=VALUE lines; comments
// ("# CONFIG_X is not set" among them) and blank lines are passed over.
func ParseConfig(r io.Reader) (Config, error) {
	c := Config{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		opt, isConfig := strings.CutPrefix(name, "CONFIG_")
		if !ok || !isConfig || opt == "" {
			return nil, fmt.Errorf("line %d: %q is not CONFIG_NAME=VALUE", n, line)
		}
		c[opt] = value
	}
	return c, sc.Err()
}

// ConfigFile is where a kernel package tree keeps the configuration of
// kernel version.
func ConfigFile(root, version string) string {
	return filepath.Join(root, "boot", "config-"+version)
}

// ReadConfig reads the configuration of kernel version from the package
// tree root (root/boot/config-VERSION). A tree without one gives an
// error wrapping fs.ErrNotExist.
func ReadConfig(root, version string) (Config, error) {
	f, err := os.Open(ConfigFile(root, version))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := ParseConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return c, nil
}
