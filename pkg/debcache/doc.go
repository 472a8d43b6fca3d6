// Package debcache is the one cache of Debian packages the project
// downloads for its boot lab and tests: kernels (FetchKernel, the version
// apt finds for a board's flavour, never a pinned one), busybox-static
// (FetchBusybox) and any other package (Package, as bootlab's U-Boot
// does). Packages are fetched with apt-get download and unpacked with
// dpkg -x into CacheDir ($OFSROOT_CACHE or .cache/ at the module root),
// never installed into the host; an flock on the folder (Lock) keeps
// parallel callers from fetching twice.
//
// It imports nothing of the project but board and kernelpkg (which
// reads a kernel package), so that any package's tests can use it
// (debcachetest) without an import cycle.
package debcache
