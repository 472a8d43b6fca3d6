package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/diskimage"
	"github.com/ofsroot/ofsroot/pkg/rootstatus"
)

// TestPackage checks the Debian package the way piuparts does, in a
// throwaway Debian root (debootstrap --variant=minbase bookworm, the
// lab's kernel installed in it, pruned to its storage and filesystem
// modules), never on this host's own root:
//   - make dist's script builds the amd64 package twice, as 0.9.0 and
//     1.0.0, from this tree; lintian finds no error and no warning that
//     the package's overrides do not explain;
//   - install 0.9.0: its postinst builds the installed kernel's
//     initramfs with ofsroot (build.json says 0.9.0) and runs the
//     /etc/initramfs/post-update.d hooks with VERSION and the image path;
//   - a local edit of the conffile /etc/ofsroot/ofsroot.conf;
//   - upgrade to 1.0.0: the initramfs is rebuilt (1.0.0), the edit kept;
//   - the packaged builder, run from /tmp, builds for an armhf board
//     from a Debian armmp kernel with the shipped armv7 init; demo and
//     bench, the source tree's, refuse and say so;
//   - the kernel hooks: postinst.d rebuilds a deleted initramfs; with a
//     bad board, ZRAM without BUSYBOX, a bad ZRAM word, a dynamic or
//     missing BUSYBOX it fails, says why and leaves the initramfs as it
//     was; with BUSYBOX and ZRAM it carries both (build.json); postrm.d
//     keeps it while the kernel is there and deletes it once gone;
//   - remove: the programs go, the conffiles and every initramfs stay, the
//     hooks do nothing; purge: the file list is the one before the
//     install, but for the kernel's initramfs, which stays;
//   - the initramfs the package's hook built boots this root protected,
//     and the one built with BUSYBOX and ZRAM boots it on a zram layer.
func TestPackage(t *testing.T) {
	t.Parallel()
	needImageTools(t)
	for _, tool := range []string{"dpkg-deb", "lintian", "unshare", "chroot", "cpio"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run scripts/setup-host.sh", tool)
		}
	}
	l := getLab(t, "qemu-x86_64")
	s := l.setup
	cache, err := kernelCache()
	if err != nil {
		t.Fatal(err)
	}
	base, err := bootlab.Debootstrap(cache, "bookworm", "amd64")
	if err != nil {
		t.Fatalf("%v (the test needs Debian's mirror once; the result is cached)", err)
	}
	dir := filepath.Join(runDir, "package")
	os.MkdirAll(dir, 0o755)
	oldDeb := buildDeb(t, filepath.Join(dir, "old"), "0.9.0")
	newDeb := buildDeb(t, filepath.Join(dir, "new"), "1.0.0")
	if filepath.Base(oldDeb) != "ofsroot_0.9.0-1_amd64.deb" || filepath.Base(newDeb) != "ofsroot_1.0.0-1_amd64.deb" {
		t.Errorf("package names %s %s", filepath.Base(oldDeb), filepath.Base(newDeb))
	}
	lint, _ := exec.Command("lintian", "--tag-display-limit", "0", newDeb).CombinedOutput()
	for _, line := range strings.Split(string(lint), "\n") {
		if strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "W: ") {
			t.Errorf("lintian: %s", line)
		}
	}
	t.Logf("lintian:\n%s", lint)

	root := filepath.Join(dir, "root")
	sh(t, "cp", "-a", base, root)
	v := s.Kernel.Version
	installTestKernel(t, s, root)
	os.MkdirAll(filepath.Join(root, "etc/initramfs/post-update.d"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/initramfs/post-update.d/zz-record"), []byte("#!/bin/sh\necho \"$@\" >>/tmp/post-update.log\n"), 0o755)
	sh(t, "cp", oldDeb, newDeb, filepath.Join(root, "tmp"))
	before := fileList(t, root)
	initrd := filepath.Join(root, "boot/initrd.img-"+v)

	// Install.
	out := inRoot(t, root, "dpkg -i /tmp/"+filepath.Base(oldDeb))
	t.Logf("dpkg -i:\n%s", out)
	if got := inRoot(t, root, "ofsroot --version; ofsctl --version"); got != "ofsroot 0.9.0\nofsctl 0.9.0\n" {
		t.Errorf("versions after the install: %q", got)
	}
	assertBuildInfo(t, initrd, v, "0.9.0")
	if log, _ := os.ReadFile(filepath.Join(root, "tmp/post-update.log")); string(log) != v+" /boot/initrd.img-"+v+"\n" {
		t.Errorf("post-update.d hooks ran with %q", log)
	}
	conf := filepath.Join(root, "etc/ofsroot/ofsroot.conf")
	f, _ := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("# a local edit\n")
	f.Close()

	// Upgrade.
	t.Logf("dpkg -i (upgrade):\n%s", inRoot(t, root, "dpkg -i /tmp/"+filepath.Base(newDeb)))
	if got := inRoot(t, root, "ofsroot --version; dpkg-query -W -f '${Version}' ofsroot"); got != "ofsroot 1.0.0\n1.0.0-1" {
		t.Errorf("after the upgrade: %q", got)
	}
	assertBuildInfo(t, initrd, v, "1.0.0")
	if data, _ := os.ReadFile(conf); !strings.HasSuffix(string(data), "# a local edit\n") {
		t.Errorf("the upgrade lost the local edit of ofsroot.conf")
	}

	// The builder from the package, outside any source tree, for a
	// board of another architecture: the shipped armv7 init.
	b, _ := board.Lookup("sabrelite")
	armKernel, err := bootlab.FetchKernel(cache, b)
	if err != nil {
		t.Fatal(err)
	}
	sh(t, "cp", armKernel.Deb, filepath.Join(root, "tmp/arm.deb"))
	out = inRoot(t, root, "cd /tmp && ofsroot initramfs --board sabrelite --kernel /tmp/arm.deb --output /tmp/sabrelite.img")
	if !strings.Contains(out, "using the shipped init /usr/lib/ofsroot/init-armv7") || !strings.Contains(out, "kernel    "+armKernel.Version) {
		t.Errorf("ofsroot initramfs --board sabrelite in the test root:\n%s", out)
	}
	assertBuildInfo(t, filepath.Join(root, "tmp/sabrelite.img"), armKernel.Version, "1.0.0")
	// That run unpacked the .deb once into the user's cache (kernelpkg:
	// ~/.cache/ofsroot/kernels), as a build cache is kept: the user's,
	// not the package's, so it goes before the file lists are compared.
	userCache := filepath.Join(root, "root/.cache/ofsroot")
	if _, err := os.Stat(filepath.Join(userCache, "kernels")); err != nil {
		t.Errorf("the packaged builder kept no unpacked kernel in root's cache: %v", err)
	}
	os.RemoveAll(userCache)
	os.Remove(filepath.Dir(userCache)) // ~/.cache, if the run made it

	// The lab commands build what they boot from the source tree: from
	// the package they refuse before any download, saying what to do.
	for _, c := range []string{"demo", "bench"} {
		out, err := inRootErr(root, "cd /tmp && ofsroot "+c)
		if err == nil || !strings.Contains(out, "ofsroot's source tree") || !strings.Contains(out, "make "+c) {
			t.Errorf("ofsroot %s from the package: %v\n%s", c, err, out)
		}
	}

	// The kernel hooks.
	os.Remove(initrd)
	inRoot(t, root, fmt.Sprintf("/etc/kernel/postinst.d/ofsroot %s /boot/vmlinuz-%s", v, v))
	assertBuildInfo(t, initrd, v, "1.0.0")
	bootInitrd := filepath.Join(dir, "initrd.img")
	sh(t, "cp", initrd, bootInitrd)
	sum := fileSHA(t, initrd)
	data, _ := os.ReadFile(conf)
	os.WriteFile(conf, append(data, []byte("BOARD=nosuch\n")...), 0o644)
	if out, err := inRootErr(root, fmt.Sprintf("/etc/kernel/postinst.d/ofsroot %s /boot/vmlinuz-%s", v, v)); err == nil || !strings.Contains(out, "FAILED") || !strings.Contains(out, "nosuch") {
		t.Errorf("a hook with a bad board: %v\n%s", err, out)
	}
	if fileSHA(t, initrd) != sum {
		t.Errorf("a failed build changed %s", initrd)
	}
	// BUSYBOX and ZRAM: a rescue shell and the zram layer in every
	// initramfs the hooks build; a setting the builder cannot meet fails
	// the build, saying why, and leaves the initramfs as it was.
	bb, err := bootlab.FetchBusybox(cache, s.Board)
	if err != nil {
		t.Fatal(err)
	}
	sh(t, "cp", bb, filepath.Join(root, "tmp/busybox"))
	hook := fmt.Sprintf("/etc/kernel/postinst.d/ofsroot %s /boot/vmlinuz-%s", v, v)
	for _, bad := range []struct{ conf, says string }{
		{"ZRAM=\"yes\"\n", "needs BUSYBOX"},
		{"ZRAM=\"maybe\"\n", "neither yes nor no"},
		{"BUSYBOX=\"/bin/dash\"\n", "dynamically linked"},
		{"BUSYBOX=\"/tmp/nothing\"\n", "/tmp/nothing"},
	} {
		os.WriteFile(conf, append(append([]byte{}, data...), bad.conf...), 0o644)
		if out, err := inRootErr(root, hook); err == nil || !strings.Contains(out, "FAILED") || !strings.Contains(out, bad.says) {
			t.Errorf("a hook with %q: %v\n%s", bad.conf, err, out)
		}
		if fileSHA(t, initrd) != sum {
			t.Errorf("a failed build (%q) changed %s", bad.conf, initrd)
		}
	}
	os.WriteFile(conf, append(append([]byte{}, data...), "BUSYBOX=\"/tmp/busybox\"\nZRAM=\"yes\"\n"...), 0o644)
	if out := inRoot(t, root, hook+" 2>&1"); !strings.Contains(out, "rescue shell /tmp/busybox, zram layer") {
		t.Errorf("the hook with BUSYBOX and ZRAM said:\n%s", out)
	}
	if info, err := rootstatus.ReadBuildInfo(initrd); err != nil || info == nil || info.ShellSHA256 != fileSHA(t, bb) || !info.Zram {
		t.Errorf("build.json with BUSYBOX and ZRAM: %+v, %v", info, err)
	}
	zramInitrd := filepath.Join(dir, "initrd-zram.img")
	sh(t, "cp", initrd, zramInitrd)
	os.WriteFile(conf, data, 0o644)
	inRoot(t, root, fmt.Sprintf("/etc/kernel/postrm.d/ofsroot %s /boot/vmlinuz-%s", v, v))
	if _, err := os.Stat(initrd); err != nil {
		t.Errorf("postrm.d deleted the initramfs of a kernel still installed: %v", err)
	}
	vmlinuz := filepath.Join(root, "boot/vmlinuz-"+v)
	os.Rename(vmlinuz, vmlinuz+".away")
	inRoot(t, root, fmt.Sprintf("/etc/kernel/postrm.d/ofsroot %s /boot/vmlinuz-%s", v, v))
	if _, err := os.Stat(initrd); !os.IsNotExist(err) {
		t.Errorf("postrm.d left the initramfs of a removed kernel: %v", err)
	}
	os.Rename(vmlinuz+".away", vmlinuz)
	inRoot(t, root, fmt.Sprintf("/etc/kernel/postinst.d/ofsroot %s /boot/vmlinuz-%s", v, v))

	// Remove, then purge.
	t.Logf("dpkg -r:\n%s", inRoot(t, root, "dpkg -r ofsroot"))
	for _, p := range []string{"usr/bin/ofsroot", "usr/bin/ofsctl", "usr/lib/ofsroot"} {
		if _, err := os.Stat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("/%s after dpkg -r: %v", p, err)
		}
	}
	for _, p := range []string{"etc/ofsroot/ofsroot.conf", "etc/kernel/postinst.d/ofsroot", "boot/initrd.img-" + v} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("/%s after dpkg -r: %v", p, err)
		}
	}
	inRoot(t, root, fmt.Sprintf("/etc/kernel/postinst.d/ofsroot %s /boot/vmlinuz-%s && /etc/kernel/postrm.d/ofsroot %s /boot/vmlinuz-%s", v, v, v, v))
	inRoot(t, root, "dpkg -P ofsroot")
	after := fileList(t, root)
	var diff []string
	for p, m := range after {
		if before[p] != m {
			diff = append(diff, "+ "+p+" "+m)
		}
	}
	for p, m := range before {
		if _, ok := after[p]; !ok {
			diff = append(diff, "- "+p+" "+m)
		}
	}
	sort.Strings(diff)
	if len(diff) != 1 || !strings.HasPrefix(diff[0], "+ /boot/initrd.img-"+v+" ") {
		t.Errorf("after the purge the root differs from before the install by more than the kernel's initramfs:\n%s", strings.Join(diff, "\n"))
	}

	// The initramfs the package's hook built boots this root, protected.
	os.Remove(filepath.Join(root, "tmp", filepath.Base(oldDeb)))
	os.Remove(filepath.Join(root, "tmp", filepath.Base(newDeb)))
	img := packageDisk(t, s, dir, root)
	run := imageBoot(t, s, vmlinuz, bootInitrd, img, []string{"root=PARTUUID=5eed0001-01", "ro", "overlayfs=yes", "ofs-size=20"})
	assertImageProtected(t, run, "/dev/vda1", "ext4")
	assertImageUnchanged(t, run)
	if st := run.Report.Status; st == nil || st.OfsrootVersion != "1.0.0" || st.Kernel != v {
		t.Errorf("status.json: %+v, want ofsroot_version 1.0.0 and kernel %s", st, v)
	}
	assertHas(t, run.Console, "(ofsroot 1.0.0, kernel "+v+")")

	// The one built with BUSYBOX and ZRAM boots the zram layer.
	run = imageBoot(t, s, vmlinuz, zramInitrd, img, []string{"root=PARTUUID=5eed0001-01", "ro", "overlayfs=yes", "ofs-upper=zram:zstd", "ofs-size=20"})
	zramStatus(t, run.Report, "zstd")
	assertImageUnchanged(t, run)
}

// buildDeb runs make dist's script for amd64 with version v into out and
// returns the package.
func buildDeb(t *testing.T, out, v string) string {
	t.Helper()
	mod, err := bootlab.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(mod, "dist/build.sh"))
	cmd.Env = append(os.Environ(), "VERSION="+v, "ARCHES=amd64", "OUT="+out, fmt.Sprintf("SOURCE_DATE_EPOCH=%d", bootlab.SourceDateEpoch))
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dist/build.sh VERSION=%s: %v\n%s", v, err, o)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("dist/build.sh made %v", debs)
	}
	return debs[0]
}

// installTestKernel puts the lab's kernel into root as its package
// would (vmlinuz and config in /boot, modules in /usr/lib/modules),
// pruned to the storage and filesystem modules and zram's.
func installTestKernel(t *testing.T, s *bootlab.Setup, root string) {
	t.Helper()
	v := s.Kernel.Version
	sh(t, "cp", "-a", filepath.Join(s.Kernel.Dir, "boot/vmlinuz-"+v), filepath.Join(s.Kernel.Dir, "boot/config-"+v), filepath.Join(root, "boot/"))
	mods := filepath.Join(root, "usr/lib/modules", v)
	os.MkdirAll(filepath.Join(mods, "kernel/drivers"), 0o755)
	src := filepath.Join(s.Kernel.Dir, "lib/modules", v)
	files, _ := filepath.Glob(filepath.Join(src, "modules.*"))
	sh(t, "cp", append(append([]string{"-a"}, files...), mods)...)
	for _, d := range []string{"fs", "lib", "crypto", "arch", "mm", "drivers/block", "drivers/virtio"} {
		sh(t, "cp", "-a", filepath.Join(src, "kernel", d), filepath.Join(mods, "kernel", filepath.Dir(d)))
	}
}

// inRootErr runs a shell script in root: chroot in a new mount and PID
// namespace with its own /proc, so that nothing stays mounted.
func inRootErr(root, script string) (string, error) {
	cmd := exec.Command("unshare", "--mount", "--pid", "--fork", "--mount-proc="+filepath.Join(root, "proc"),
		"chroot", root, "/bin/sh", "-ec", script)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "DEBIAN_FRONTEND=noninteractive", "HOME=/root"}
	o, err := cmd.CombinedOutput()
	return string(o), err
}

func inRoot(t *testing.T, root, script string) string {
	t.Helper()
	o, err := inRootErr(root, script)
	if err != nil {
		t.Fatalf("in the test root: %s: %v\n%s", script, err, o)
	}
	return o
}

// fileList maps every path of root, but for the folders that change by
// themselves (dpkg's and apt's state and logs, /tmp, /proc...), to its
// type, mode, owner and, for files, content hash.
func fileList(t *testing.T, root string) map[string]string {
	t.Helper()
	skip := map[string]bool{"/proc": true, "/sys": true, "/dev": true, "/run": true, "/tmp": true,
		"/var/lib/dpkg": true, "/var/log": true, "/var/cache": true, "/var/lib/apt": true}
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		if skip[rel] {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		if fi.Mode().IsRegular() {
			desc += " " + fileSHA(t, p)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			desc += " -> " + target
		}
		m[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// assertBuildInfo reads /etc/ofsroot/build.json out of the initramfs
// (whatever its compression: zstd is amd64's default) and checks the
// kernel and ofsroot versions it records.
func assertBuildInfo(t *testing.T, initrd, kernel, version string) {
	t.Helper()
	info, err := rootstatus.ReadBuildInfo(initrd)
	if err != nil || info == nil {
		t.Fatalf("reading build.json of %s: %v (found: %v)", initrd, err, info != nil)
	}
	if info.KernelVersion != kernel || info.OfsrootVersion != version {
		t.Errorf("%s: kernel %s, ofsroot %s; want %s, %s", initrd, info.KernelVersion, info.OfsrootVersion, kernel, version)
	}
}

// packageDisk makes an MBR disk (signature 5eed0001) of root, with the
// probe as its init, and returns its path.
func packageDisk(t *testing.T, s *bootlab.Setup, dir, root string) string {
	t.Helper()
	sh(t, "cp", s.Probe, filepath.Join(root, "usr/sbin/init"))
	os.WriteFile(filepath.Join(root, "etc/fstab"), []byte("PARTUUID=5eed0001-01 / ext4 defaults 0 1\n"), 0o644)
	st, _ := diskimage.MeasureTree(root)
	fsSize := (st.Bytes*13/10/diskimage.MiB + 64) * diskimage.MiB
	img := filepath.Join(dir, "disk.img")
	sh(t, "truncate", "-s", fmt.Sprint(fsSize+diskimage.MiB), img)
	cmd := exec.Command("sfdisk", "-q", img)
	cmd.Stdin = strings.NewReader("label: dos\nlabel-id: 0x5eed0001\nstart=2048, type=83\n")
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, o)
	}
	sh(t, "mkfs.ext4", "-q", "-d", root, "-E", fmt.Sprintf("offset=%d", diskimage.MiB), img, fmt.Sprintf("%dk", fsSize/1024))
	return img
}
