package bootlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ofsroot/ofsroot/board"
)

// BootSpec says what to boot.
type BootSpec struct {
	Board  board.Board
	Kernel Kernel // Vmlinuz, and the board's device tree if it has one
	Initrd string
	// Disk is the root disk image, attached read-write as on a real
	// board (the tests prove it is not written). Empty for none.
	Disk string
	// ExtraDisks are more disk images, attached read-write after Disk
	// the same way (virtio: /dev/vdb, /dev/vdc, ...; sd-card: the next
	// SD slots), for layers and data partitions kept across boots.
	ExtraDisks []string
	// Append are the kernel command line words after console=.
	Append []string
	// Timeout for the whole run; zero means DefaultTimeout(Board).
	Timeout time.Duration
	// Log is the file the console is written to (created or truncated).
	Log string
	// Stream, if set, gets the console as it comes.
	Stream io.Writer
	// Replies are typed on the console, in order, each once its When has
	// appeared on it (a prompt, say). Without any, nothing is typed.
	Replies []Reply
	// FirmwareBoot boots Disk as a PC does: QEMU's firmware (SeaBIOS on
	// x86_64) runs the bootloader in the disk's first sector, which loads
	// the kernel and initramfs from the disk itself. Kernel, Initrd and
	// Append are then unused (the bootloader's configuration on the disk
	// says them), and the guest gets a virtio RNG. Only for a board whose
	// firmware reads a virtio-pci disk.
	FirmwareBoot bool
}

// Reply is something to type on the console once When appears on it.
type Reply struct {
	When, Send string
}

// Console is the outcome of one QEMU run.
type Console struct {
	Text     string
	Log      string
	Command  []string
	Duration time.Duration
	// TimedOut says QEMU was killed at the timeout.
	TimedOut bool
}

// ErrTimeout marks a run that QEMU did not end itself.
var ErrTimeout = errors.New("QEMU did not exit before the timeout")

// Contains reports whether the console has s.
func (c *Console) Contains(s string) bool { return strings.Contains(c.Text, s) }

// Lines returns the console lines containing s.
func (c *Console) Lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(c.Text, "\r", ""), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// DefaultTimeout is generous for a boot under TCG on a busy 2-core
// machine. A boot takes 5-7 s alone, but up to 50 s was seen with two
// boots and two fuzzers sharing the cores; the i.MX6 is the slowest.
// A boot that ends by itself never waits for it.
func DefaultTimeout(b board.Board) time.Duration {
	if b.QEMU.Disk == "sd-card" {
		return 300 * time.Second
	}
	return 180 * time.Second
}

// QEMUArgs builds the QEMU command line (binary first) for s.
func QEMUArgs(s BootSpec) ([]string, error) {
	q := s.Board.QEMU
	if q.Binary == "" {
		return nil, fmt.Errorf("board %s has no QEMU binary", s.Board.Name)
	}
	// KVM on hosts like this one hangs Debian kernels: always TCG.
	args := []string{q.Binary, "-accel", "tcg"}
	if q.Machine != "" {
		args = append(args, "-M", q.Machine)
	}
	if q.MemoryMiB > 0 {
		args = append(args, "-m", fmt.Sprint(q.MemoryMiB))
	}
	if q.SMP > 0 {
		args = append(args, "-smp", fmt.Sprint(q.SMP))
	}
	args = append(args, q.SerialArgs...)
	args = append(args, q.ExtraArgs...)
	if s.FirmwareBoot {
		if s.Disk == "" || q.Disk != "virtio-pci" {
			return nil, fmt.Errorf("board %s: a firmware boot needs a disk on virtio-pci", s.Board.Name)
		}
		// A hardware RNG, as PCs have: a whole distribution's boot
		// (systemd-random-seed) otherwise waits for the kernel's entropy,
		// slow to come under emulation.
		args = append(args, "-device", "virtio-rng-pci")
		// bootindex: the firmware boots this disk, whatever else is attached.
		args = append(args, "-drive", "file="+s.Disk+",format=raw,if=none,id=boot",
			"-device", "virtio-blk-pci,drive=boot,bootindex=0")
		// The extra disks as devices like the boot disk's, so that they
		// follow it in order (/dev/vdb, ...).
		for i, d := range s.ExtraDisks {
			if strings.Contains(s.Disk+d, ",") {
				return nil, fmt.Errorf("disk image path %q or %q contains a comma", s.Disk, d)
			}
			args = append(args, "-drive", fmt.Sprintf("file=%s,format=raw,if=none,id=more%d", d, i),
				"-device", fmt.Sprintf("virtio-blk-pci,drive=more%d", i))
		}
		return append(args, "-no-reboot"), nil
	}
	args = append(args, "-kernel", s.Kernel.Vmlinuz)
	if s.Board.DeviceTree != "" {
		dtb, err := s.Kernel.DTB(s.Board.DeviceTree)
		if err != nil {
			return nil, err
		}
		args = append(args, "-dtb", dtb)
	}
	if s.Initrd != "" {
		args = append(args, "-initrd", s.Initrd)
	}
	words := append([]string{"console=" + s.Board.Console}, q.KernelArgs...)
	words = append(words, s.Append...)
	args = append(args, "-append", strings.Join(words, " "))
	disks := s.ExtraDisks
	if s.Disk != "" {
		disks = append([]string{s.Disk}, disks...)
	}
	for i, disk := range disks {
		// No "," in the path: QEMU would read it as an option separator.
		if strings.Contains(disk, ",") {
			return nil, fmt.Errorf("disk image path %q contains a comma", disk)
		}
		switch q.Disk {
		case "virtio-pci":
			args = append(args, "-drive", "file="+disk+",format=raw,if=virtio")
		case "virtio-mmio":
			args = append(args, "-drive", fmt.Sprintf("file=%s,format=raw,if=none,id=hd%d", disk, i),
				"-device", fmt.Sprintf("virtio-blk-device,drive=hd%d", i))
		case "sd-card":
			id := "sd"
			if i > 0 {
				id = fmt.Sprintf("sd%d", i)
			}
			args = append(args, "-drive", "file="+disk+",format=raw,if=none,id="+id,
				"-device", "sd-card,drive="+id)
		default:
			return nil, fmt.Errorf("board %s: unknown disk attachment %q", s.Board.Name, q.Disk)
		}
	}
	// A guest reboot ends QEMU: that is how every test boot finishes.
	return append(args, "-no-reboot"), nil
}

// Boot runs QEMU as s describes until it exits or the timeout passes,
// and returns the console. QEMU runs in its own process group; on
// timeout or cancellation that group alone gets SIGTERM, then SIGKILL
// five seconds later. The error is non-nil when QEMU could not run, did
// not exit in time (ErrTimeout; the Console is returned too), or exited
// with a failure status.
//
// Side effects: starts qemu-system-*, writes s.Log.
func Boot(ctx context.Context, s BootSpec) (*Console, error) {
	args, err := QEMUArgs(s)
	if err != nil {
		return nil, err
	}
	if s.Log == "" {
		return nil, errors.New("BootSpec.Log is required")
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout(s.Board)
	}
	logf, err := os.Create(s.Log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "# %s\n", shellQuote(args))

	var buf lockedBuffer
	writers := []io.Writer{logf, &buf}
	if s.Stream != nil {
		writers = append(writers, s.Stream)
	}
	w := io.MultiWriter(writers...)

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = nil // /dev/null: nothing types on the console
	var typist io.WriteCloser
	if len(s.Replies) > 0 {
		if typist, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
	}
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // a group of its own, to kill it alone
		Pdeathsig: syscall.SIGKILL, // and never outlive the caller
	}
	c := &Console{Log: s.Log, Command: args}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", args[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if typist != nil {
		stopTyping := make(chan struct{})
		defer close(stopTyping)
		go typeReplies(typist, s.Replies, &buf, stopTyping)
	}

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var waitErr error
	select {
	case waitErr = <-done:
	case <-timer.C:
		c.TimedOut = true
		waitErr = killGroup(cmd.Process.Pid, done)
	case <-ctx.Done():
		c.TimedOut = true
		waitErr = killGroup(cmd.Process.Pid, done)
	}
	c.Duration = time.Since(start)
	c.Text = buf.String()
	fmt.Fprintf(logf, "\n# exit after %.1fs: %v\n", c.Duration.Seconds(), waitErr)
	switch {
	case c.TimedOut && ctx.Err() != nil:
		return c, fmt.Errorf("%w (%v); console in %s", ErrTimeout, ctx.Err(), s.Log)
	case c.TimedOut:
		return c, fmt.Errorf("%w (%s); console in %s", ErrTimeout, timeout, s.Log)
	case waitErr != nil:
		return c, fmt.Errorf("%s: %w; console in %s", args[0], waitErr, s.Log)
	}
	return c, nil
}

func killGroup(pid int, done <-chan error) error {
	syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
	}
	syscall.Kill(-pid, syscall.SIGKILL)
	return <-done
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// shellQuote renders a command line for a log, quoting what needs it.
func shellQuote(args []string) string {
	var out []string
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}();&|<>#!~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

// typeReplies writes each reply to the console once its When has
// appeared after the previous reply's, polling the console text.
func typeReplies(w io.WriteCloser, replies []Reply, console *lockedBuffer, stop <-chan struct{}) {
	defer w.Close()
	from := 0
	for _, r := range replies {
		for {
			text := console.String()
			if i := strings.Index(text[from:], r.When); i >= 0 {
				from += i + len(r.When)
				break
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		if _, err := io.WriteString(w, r.Send); err != nil {
			return
		}
	}
	<-stop
}
