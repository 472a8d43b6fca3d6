package bootbench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/pkg/bootlab"
)

// Variant is one initramfs to boot.
type Variant struct {
	Name   string
	Initrd string
	// Append are command line words for this variant (after the root=
	// and the common words).
	Append []string
	// Compressed and Unpacked are the initramfs's sizes in bytes.
	Compressed, Unpacked int64
}

// Bench is one board's benchmark: its variants, booted in turn.
type Bench struct {
	Board  board.Board
	Kernel bootlab.Kernel
	// Image is the root disk image (a copy is booted each time) and Root
	// its root= word.
	Image, Root string
	// Common are words every variant gets (quiet, initcall_debug...).
	Common   []string
	Variants []Variant
	// QEMUArgs are added to every boot's QEMU command line (ICount).
	QEMUArgs []string
	Work     string
	// Timeout per boot.
	Timeout time.Duration
}

// ICount are the QEMU arguments of the instruction clock: the guest's
// clock advances 1 ns per guest instruction executed, and jumps over its
// idle time to the next timer (sleep=off), instead of following the
// host's. A stage is then what the guest executed: it stretches far less
// with the host's load (a disk read still completes at the host's pace,
// and the waiting guest's clock jumps to its next timer), and it leaves
// out TCG's cost of translating code the first time it runs, which a
// real CPU does not pay (a Go init, whose code mostly runs once, pays it
// on every line). What it does not model: a real CPU's speed (1
// instruction per ns is a round figure, not a board), caches, and
// devices' own latencies (a disk read completes when the host's I/O
// does).
var ICount = []string{"-icount", "shift=0,sleep=off"}

// Result is one variant's boots.
type Result struct {
	Variant  Variant
	Boots    []Boot
	Failures []string
}

// Run boots every variant n times, interleaved (v1 v2 v3, v1 v2 v3, ...)
// so that a change in the host's load hits them alike. progress gets a
// line per boot.
func (b *Bench) Run(ctx context.Context, n int, progress io.Writer) ([]*Result, error) {
	res := make([]*Result, len(b.Variants))
	for i, v := range b.Variants {
		res[i] = &Result{Variant: v}
	}
	for round := 1; round <= n; round++ {
		for i, v := range b.Variants {
			dir := filepath.Join(b.Work, fmt.Sprintf("%s-%d", slug(v.Name), round))
			boot, err := b.boot(ctx, v, dir)
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			if err != nil {
				res[i].Failures = append(res[i].Failures, err.Error())
				fmt.Fprintf(progress, "bench: %s %s boot %d/%d: %v\n", b.Board.Name, v.Name, round, n, err)
				continue
			}
			res[i].Boots = append(res[i].Boots, boot)
			fmt.Fprintf(progress, "bench: %s %s boot %d/%d: stage %.3f s\n", b.Board.Name, v.Name, round, n, boot.Stage())
		}
	}
	return res, nil
}

func (b *Bench) boot(ctx context.Context, v Variant, dir string) (Boot, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Boot{}, err
	}
	disk := filepath.Join(dir, filepath.Base(b.Image))
	if err := bootlab.CopySparse(b.Image, disk); err != nil {
		return Boot{}, err
	}
	defer os.Remove(disk)
	words := append([]string{b.Root}, b.Common...)
	words = append(words, v.Append...)
	args, err := bootlab.QEMUArgs(bootlab.BootSpec{Board: b.Board, Kernel: b.Kernel, Initrd: v.Initrd, Disk: disk, Append: words})
	if err != nil {
		return Boot{}, err
	}
	args = append(args, b.QEMUArgs...)
	log := filepath.Join(dir, "console.log")
	text, err := runUntil(ctx, args, EndLine, b.Timeout)
	os.WriteFile(log, []byte("# "+strings.Join(args, " ")+"\n"+text), 0o644)
	if err != nil {
		return Boot{}, fmt.Errorf("%v (console in %s)", err, log)
	}
	c, err := ParseConsole(text)
	if err != nil {
		return Boot{}, fmt.Errorf("%v (console in %s)", err, log)
	}
	boot, err := Analyze(c)
	if err != nil {
		return Boot{}, fmt.Errorf("%v (console in %s)", err, log)
	}
	return boot, nil
}

// runUntil runs QEMU until it exits, prints end on its console (then it
// is killed: an i.MX6 without its watchdog driver cannot reboot), or the
// timeout passes.
func runUntil(ctx context.Context, args []string, end string, timeout time.Duration) (string, error) {
	cmd := exec.Command(args[0], args[1:]...)
	var mu sync.Mutex
	var out bytes.Buffer
	seen := make(chan struct{})
	var once sync.Once
	cmd.Stdout = writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		out.Write(p)
		if bytes.Contains(out.Bytes(), []byte(end)) {
			once.Do(func() { close(seen) })
		}
		return len(p), nil
	})
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting %s: %w", args[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	kill := func() error {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return <-done
	}
	var err error
	select {
	case err = <-done:
	case <-seen:
		select {
		case err = <-done:
		case <-time.After(2 * time.Second):
			kill()
			err = nil
		}
	case <-time.After(timeout):
		kill()
		err = fmt.Errorf("QEMU did not finish in %s", timeout)
	case <-ctx.Done():
		kill()
		err = ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	return out.String(), err
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
				b.WriteByte('-')
			}
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// LoadAvg returns the host's /proc/loadavg (1, 5 and 15 minutes), "" if
// unreadable.
func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
