package bootlab

import (
	"github.com/ofsroot/ofsroot/internal/sourcetree"
	"github.com/ofsroot/ofsroot/pkg/debcache"
)

// Kernel is one Debian linux-image package unpacked in the cache; the
// fetching lives in package debcache, the one home for downloads.
type Kernel = debcache.Kernel

// The cache of downloads, from package debcache (see there).
var (
	CacheDir     = debcache.CacheDir
	FetchKernel  = debcache.FetchKernel
	FetchBusybox = debcache.FetchBusybox
)

// ModuleRoot is ofsroot's source tree, where the lab builds its Go
// programs (package sourcetree).
var ModuleRoot = sourcetree.FromWorkingDir
