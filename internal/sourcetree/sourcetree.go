// Package sourcetree finds ofsroot's source tree: the folder holding the
// go.mod of module github.com/ofsroot/ofsroot. The commands that build
// Go programs at run time (the init when no prebuilt one is shipped, the
// boot lab's probe, the benchmark's marker) build them there; an
// installed package has no source tree, and says so through Find's error.
package sourcetree

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ModulePath is the Go module of ofsroot's source tree.
const ModulePath = "github.com/ofsroot/ofsroot"

// Find returns dir or its nearest parent holding the go.mod of
// ModulePath; another module's go.mod on the way is passed over.
func Find(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && goModModule(data) == ModulePath {
			return d, nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return "", fmt.Errorf("no go.mod of module %s in %s or its parents (not in ofsroot's source tree)", ModulePath, abs)
}

// FromWorkingDir is Find of the working directory.
func FromWorkingDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return Find(wd)
}

// goModModule returns the module path a go.mod declares.
func goModModule(data []byte) string {
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "//")
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], "\"`")
		}
	}
	return ""
}
