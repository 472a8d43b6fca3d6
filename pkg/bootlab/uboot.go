package bootlab

import (
	"github.com/ofsroot/ofsroot/pkg/debcache"

	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ofsroot/ofsroot/board"
)

// This file is the U-Boot half of the boot lab: Debian's U-Boot build
// for a board, the images a board boots from (a USB stick with the boot
// partition, an SPI NOR holding the environment, an SD card holding a
// root that has ofsctl), and a QEMU session whose console is driven over
// a unix socket, through as many resets as a test wants.

// UBoot is a board's U-Boot build unpacked from its Debian package.
type UBoot struct {
	// Deb is the downloaded package, Dir the folder dpkg -x made of it.
	Deb, Dir string
	// Image is the build's file for the board (Dir/usr/lib/u-boot/BUILD/IMAGE).
	Image string
}

// FetchUBoot downloads board b's U-Boot package with apt-get download
// into cacheDir (kept there, like the kernels) and unpacks it with dpkg
// -x. A package already in the cache is used as it is, so this works
// offline once fetched.
//
// Side effects: files under cacheDir; runs apt-get and dpkg; holds
// cacheDir/.lock.
func FetchUBoot(cacheDir string, b board.Board) (UBoot, error) {
	u := b.UBoot
	switch {
	case u == nil:
		return UBoot{}, fmt.Errorf("board %s does not boot with U-Boot", b.Name)
	case u.Package == "":
		return UBoot{}, fmt.Errorf("board %s: Debian has no U-Boot for it (%s)", b.Name, u.Source)
	}
	want := filepath.Join("usr/lib/u-boot", u.Build, u.Image)
	deb, dir, err := debcache.Package(cacheDir, u.Package, b.DebianArch, want)
	if err != nil {
		return UBoot{}, err
	}
	return UBoot{Deb: deb, Dir: dir, Image: filepath.Join(dir, want)}, nil
}

// StripImage writes image without its first skip bytes to out: the i.MX
// boot ROM's header area, which QEMU's generic loader cannot use.
func StripImage(image string, skip int64, out string) error {
	b, err := os.ReadFile(image)
	if err != nil {
		return err
	}
	if int64(len(b)) <= skip {
		return fmt.Errorf("%s is %d bytes, not more than the %d to skip", image, len(b), skip)
	}
	return os.WriteFile(out, b[skip:], 0o644)
}

// MakeErasedFlash writes an erased (all 0xff) flash image of size bytes.
func MakeErasedFlash(out string, size int64) error {
	return os.WriteFile(out, bytes.Repeat([]byte{0xff}, int(size)), 0o644)
}

// StickDiskID is the MBR disk signature of the boot stick.
const StickDiskID = "0b007ab1"

// MakeBootStick writes a disk image to out: an MBR with one bootable FAT
// partition from 1 MiB holding the files and folders of dir, as a
// board's boot partition would (a separate /boot: flash-kernel's
// dtbs/VERSION/ folder too). It uses sfdisk, mkfs.vfat (--offset) and
// mtools' mcopy on the image, so nothing is mounted.
func MakeBootStick(dir, out string, sizeMiB int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var files []string
	var total int64
	for _, e := range entries {
		if e.Type().IsRegular() || e.IsDir() {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size() + 4096 // and a cluster's slack
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	if sizeMiB == 0 {
		sizeMiB = int(total>>20) + 8
	}
	if int64(sizeMiB-1)<<20 < total+(1<<20) {
		return fmt.Errorf("boot stick of %d MiB is too small for %d bytes of files", sizeMiB, total)
	}
	os.Remove(out)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := f.Truncate(int64(sizeMiB) << 20); err != nil {
		f.Close()
		return err
	}
	f.Close()
	const start = 2048 // sectors: 1 MiB
	sectors := int64(sizeMiB)<<20/512 - start
	script := fmt.Sprintf("label: dos\nlabel-id: 0x%s\nunit: sectors\n\nstart=%d, size=%d, type=c, bootable\n", StickDiskID, start, sectors)
	cmd := exec.Command("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", out)
	cmd.Stdin = strings.NewReader(script)
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sfdisk %s: %v\n%s", out, err, o)
	}
	// mkfs.vfat takes the size in KiB blocks after the device.
	args := []string{"--invariant", "-i", StickDiskID, "-n", "OFSBOOT", "--offset=" + strconv.Itoa(start), out, strconv.FormatInt(sectors/2, 10)}
	if o, err := exec.Command("mkfs.vfat", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.vfat %s: %v\n%s", strings.Join(args, " "), err, o)
	}
	img := fmt.Sprintf("%s@@%d", out, start*512)
	cargs := append([]string{"-i", img, "-s", "-m", "-o"}, files...)
	cargs = append(cargs, "::/")
	cmd = exec.Command("mcopy", cargs...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mcopy into %s: %v\n%s", img, err, o)
	}
	return nil
}

// BuildOfsctl compiles cmd/ofsctl for board b, static and cgo-free, into
// out.
func BuildOfsctl(b board.Board, out string) error { return GoBuild(b, "./cmd/ofsctl", out) }

// WriteUBootRootTree is WriteRootTree plus what a U-Boot board's root
// has for the environment: /usr/bin/ofsctl (a copy of ofsctl) and
// /etc/fw_env.config (fwEnvConfig).
func WriteUBootRootTree(dir, initBinary, ofsctl, fwEnvConfig string) error {
	if err := WriteRootTree(dir, initBinary); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "usr", "bin"), 0o755); err != nil {
		return err
	}
	if err := copyFile(ofsctl, filepath.Join(dir, "usr", "bin", "ofsctl"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "fw_env.config"), []byte(fwEnvConfig), 0o644); err != nil {
		return err
	}
	stamp := time.Unix(SourceDateEpoch, 0)
	for _, p := range []string{"usr", "usr/bin", "usr/bin/ofsctl", "etc", "etc/fw_env.config"} {
		if err := os.Chtimes(filepath.Join(dir, p), stamp, stamp); err != nil {
			return err
		}
	}
	return nil
}

// UBootSpec says what a U-Boot session boots.
type UBootSpec struct {
	Board board.Board
	// Binary is the U-Boot image with the boot ROM's area stripped
	// (StripImage), loaded at Board.UBoot.QEMU.LoadAddr.
	Binary string
	// SPI is the SPI NOR image holding the environment (2 MiB for the
	// board's sst25vf016b).
	SPI string
	// Stick is the USB stick image with the boot partition.
	Stick string
	// SD is the SD card image (the root), attached as the board's
	// QEMU disk; empty for none.
	SD string
	// Log receives the console (created or truncated).
	Log string
	// Stream, if set, gets the console as it comes.
	Stream io.Writer
	// Timeout ends the whole session; zero means 15 minutes.
	Timeout time.Duration
}

// UBootArgs builds the QEMU command line (binary first) for a session
// whose console is the unix socket sock. Unlike Boot's there is no
// -kernel and no -no-reboot: U-Boot loads the kernel, and a reset starts
// U-Boot again (the generic loader puts it back on every reset).
func UBootArgs(s UBootSpec, sock string) ([]string, error) {
	b := s.Board
	q := b.QEMU
	if b.UBoot == nil || b.UBoot.QEMU == nil {
		return nil, fmt.Errorf("board %s has no U-Boot that QEMU can start", b.Name)
	}
	if q.Binary == "" || q.Machine == "" {
		return nil, fmt.Errorf("board %s has no QEMU machine", b.Name)
	}
	for _, p := range []string{s.Binary, s.SPI, s.Stick, s.SD, sock} {
		if strings.Contains(p, ",") {
			return nil, fmt.Errorf("path %q contains a comma, which QEMU reads as an option separator", p)
		}
	}
	addr := b.UBoot.QEMU.LoadAddr.String()
	args := []string{q.Binary, "-accel", "tcg", "-M", q.Machine}
	if q.SMP > 0 {
		args = append(args, "-smp", strconv.Itoa(q.SMP))
	}
	if q.MemoryMiB > 0 {
		args = append(args, "-m", strconv.Itoa(q.MemoryMiB))
	}
	args = append(args,
		"-display", "none",
		// UART1 is unused; UART2 (ttymxc1) is the console, on the socket.
		"-serial", "null",
		"-chardev", "socket,id=con,path="+sock+",server=on,wait=on",
		"-serial", "chardev:con",
		"-device", "loader,file="+s.Binary+",addr="+addr+",force-raw=on",
		"-device", "loader,addr="+addr+",cpu-num=0",
		"-drive", "file="+s.SPI+",format=raw,if=mtd",
		"-drive", "file="+s.Stick+",format=raw,if=none,id=stick",
		"-device", "usb-storage,drive=stick,bus=usb-bus.1",
	)
	if s.SD != "" {
		if q.Disk != "sd-card" {
			return nil, fmt.Errorf("board %s: the root disk is %q, not an SD card", b.Name, q.Disk)
		}
		args = append(args, "-drive", "file="+s.SD+",format=raw,if=none,id=sd", "-device", "sd-card,drive=sd")
	}
	return args, nil
}

// UBootSession is a running QEMU whose console a test drives: it waits
// for text, sends keys and commands, and keeps the whole console.
type UBootSession struct {
	Command []string

	cmd  *exec.Cmd
	conn net.Conn
	dir  string
	done chan error

	mu     sync.Mutex
	text   []byte
	cursor int // Expect looks from here
	mark   int // start of the current boot's text
	closed bool
	wake   chan struct{}
}

// ErrSessionEnded is returned when QEMU exited or the console closed
// while waiting.
var ErrSessionEnded = errors.New("QEMU ended")

// StartUBoot starts QEMU as s describes and connects to its console. It
// returns once connected; U-Boot starts then.
//
// Side effects: starts qemu-system-* in its own process group (killed
// by Close, or at s.Timeout); creates a socket in a temporary folder;
// writes s.Log.
func StartUBoot(ctx context.Context, s UBootSpec) (*UBootSession, error) {
	if s.Log == "" {
		return nil, errors.New("UBootSpec.Log is required")
	}
	// A unix socket path has a 108-byte limit: keep it short.
	dir, err := os.MkdirTemp("", "ofsub")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "console")
	args, err := UBootArgs(s, sock)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logf, err := os.Create(s.Log)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	fmt.Fprintf(logf, "# %s\n", shellQuote(args))
	us := &UBootSession{Command: args, dir: dir, done: make(chan error, 1), wake: make(chan struct{}, 1)}
	us.cmd = exec.Command(args[0], args[1:]...)
	var qemuOut lockedBuffer
	us.cmd.Stdout, us.cmd.Stderr = &qemuOut, &qemuOut
	us.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := us.cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %w", args[0], err)
	}
	go func() { us.done <- us.cmd.Wait() }()

	// QEMU creates the socket, then waits for us (wait=on).
	deadline := time.Now().Add(30 * time.Second)
	for {
		us.conn, err = net.Dial("unix", sock)
		if err == nil {
			break
		}
		select {
		case werr := <-us.done:
			us.done <- werr
			logf.Close()
			os.RemoveAll(dir)
			return nil, fmt.Errorf("%s exited before its console opened: %v\n%s", args[0], werr, qemuOut.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			us.Close()
			logf.Close()
			return nil, fmt.Errorf("no console socket from %s after 30 s: %v", args[0], err)
		}
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 15 * time.Minute
	}
	go func() {
		select {
		case <-time.After(timeout):
		case <-ctx.Done():
		case err := <-us.done:
			us.done <- err
			return
		}
		us.Close()
	}()
	go us.read(logf, s.Stream, &qemuOut)
	return us, nil
}

// read copies the console into the session's text and the log.
func (us *UBootSession) read(logf *os.File, stream io.Writer, qemuOut *lockedBuffer) {
	defer logf.Close()
	buf := make([]byte, 4096)
	for {
		n, err := us.conn.Read(buf)
		if n > 0 {
			logf.Write(buf[:n])
			if stream != nil {
				stream.Write(buf[:n])
			}
			us.mu.Lock()
			us.text = append(us.text, buf[:n]...)
			us.mu.Unlock()
			us.notify()
		}
		if err != nil {
			us.mu.Lock()
			us.closed = true
			us.mu.Unlock()
			if o := qemuOut.String(); o != "" {
				fmt.Fprintf(logf, "\n# QEMU said: %s\n", o)
			}
			us.notify()
			return
		}
	}
}

func (us *UBootSession) notify() {
	select {
	case us.wake <- struct{}{}:
	default:
	}
}

// Expect waits up to timeout for the first of patterns to appear after
// what earlier calls consumed, consumes the text up to the end of it,
// and returns which pattern came and the text before it.
func (us *UBootSession) Expect(timeout time.Duration, patterns ...string) (int, string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		us.mu.Lock()
		rest := us.text[us.cursor:]
		best, at := -1, len(rest)
		for i, p := range patterns {
			if j := bytes.Index(rest, []byte(p)); j >= 0 && j < at {
				best, at = i, j
			}
		}
		if best >= 0 {
			before := string(rest[:at])
			us.cursor += at + len(patterns[best])
			us.mu.Unlock()
			return best, before, nil
		}
		closed := us.closed
		tail := string(rest)
		us.mu.Unlock()
		if closed {
			return -1, tail, fmt.Errorf("%w while waiting for %q", ErrSessionEnded, patterns)
		}
		select {
		case <-us.wake:
		case <-deadline.C:
			return -1, tail, fmt.Errorf("no %q on the console within %s", patterns, timeout)
		}
	}
}

// Send types s on the console.
func (us *UBootSession) Send(s string) error {
	_, err := us.conn.Write([]byte(s))
	return err
}

// Prompt is U-Boot's prompt.
const Prompt = "=> "

// Interrupt waits for U-Boot's autoboot countdown, stops it with a key
// and waits for the prompt.
func (us *UBootSession) Interrupt(timeout time.Duration) error {
	if _, _, err := us.Expect(timeout, "Hit any key to stop autoboot"); err != nil {
		return err
	}
	if err := us.Send(" "); err != nil {
		return err
	}
	_, _, err := us.Expect(30*time.Second, Prompt)
	return err
}

// Run sends one command line at the prompt and returns its output (the
// echoed line removed) once the prompt is back.
func (us *UBootSession) Run(command string, timeout time.Duration) (string, error) {
	if err := us.Send(command + "\r"); err != nil {
		return "", err
	}
	_, out, err := us.Expect(timeout, Prompt)
	out = strings.ReplaceAll(out, "\r", "")
	if i := strings.IndexByte(out, '\n'); i >= 0 && strings.Contains(out[:i], command) {
		out = out[i+1:]
	}
	return out, err
}

// MarkBoot starts a new boot's text: BootText returns what the console
// said since.
func (us *UBootSession) MarkBoot() {
	us.mu.Lock()
	us.mark = us.cursor
	us.mu.Unlock()
}

// BootText is the console since the last MarkBoot, up to what Expect
// has consumed.
func (us *UBootSession) BootText() string {
	us.mu.Lock()
	defer us.mu.Unlock()
	return string(us.text[us.mark:us.cursor])
}

// Text is the whole console so far.
func (us *UBootSession) Text() string {
	us.mu.Lock()
	defer us.mu.Unlock()
	return string(us.text)
}

// WaitProbe waits for the probe's report of the boot under way and
// parses it from this boot's text.
func (us *UBootSession) WaitProbe(timeout time.Duration) (*Report, string, error) {
	if _, _, err := us.Expect(timeout, "PROBE END"); err != nil {
		return nil, us.BootText(), err
	}
	text := us.BootText()
	r, err := ParseProbe(text)
	return r, text, err
}

// Close stops QEMU (its process group: SIGTERM, then SIGKILL) and
// removes the socket folder. It is safe to call more than once.
func (us *UBootSession) Close() error {
	if us.conn != nil {
		us.conn.Close()
	}
	var err error
	if us.cmd != nil && us.cmd.Process != nil {
		select {
		case err = <-us.done:
			us.done <- err
		default:
			err = killGroup(us.cmd.Process.Pid, us.done)
			us.done <- err
		}
	}
	os.RemoveAll(us.dir)
	return err
}
