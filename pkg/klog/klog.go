// Package klog is the init's one logger: every line goes to the kernel
// log (/dev/kmsg) with a level, prefixed "ofsroot: ", and the kernel's
// console log level decides what the console shows, as for the kernel's
// own lines: with `quiet` or `loglevel=N` progress lines stay in the
// kernel log (dmesg), and they cost no time on a slow serial console.
//
// A warning or an error the kernel will not echo (its level is not below
// the console log level) is written to the console by the logger, so it
// is never missed. Progress lines logged before /dev/kmsg exists (before
// devtmpfs is mounted) are held and go to the kernel log once it can be
// opened; if a warning or an error comes first, they go to the console
// before it.
package klog

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Levels, as the kernel numbers them.
const (
	Err    = 3
	Warn   = 4
	Notice = 5
)

// Logger writes lines to the kernel log and the console.
type Logger struct {
	mu sync.Mutex
	// Console is where lines go when the kernel will not echo them;
	// normally os.Stdout, which the kernel opened on /dev/console.
	Console io.Writer
	// KmsgPath is /dev/kmsg; empty to skip the kernel log (tests).
	KmsgPath string
	// ConsoleLevel returns the kernel's console log level; a line whose
	// level is below it is echoed by the kernel. nil means never.
	ConsoleLevel func() int
	// Lines keeps every line written, for the status file.
	Lines []string

	// level caches ConsoleLevel's answer once it has one: nothing in the
	// initramfs changes it, and asking costs a file read per line.
	level int
	// pending are progress lines waiting for /dev/kmsg.
	pending []string
}

// New returns the init's logger.
func New() *Logger {
	return &Logger{Console: os.Stdout, KmsgPath: "/dev/kmsg", ConsoleLevel: ProcConsoleLevel}
}

// Infof logs a progress line.
func (l *Logger) Infof(format string, args ...any) { l.log(Notice, "", format, args...) }

// Warnf logs something the user should know; the boot goes on.
func (l *Logger) Warnf(format string, args ...any) { l.log(Warn, "warning: ", format, args...) }

// Errorf logs a failure.
func (l *Logger) Errorf(format string, args ...any) { l.log(Err, "error: ", format, args...) }

// Loudf logs a failure the user must not miss, framed so that it stands
// out on a scrolling console.
func (l *Logger) Loudf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	bar := strings.Repeat("!", 72)
	l.log(Err, "", "%s", bar)
	for _, line := range strings.Split(msg, "\n") {
		l.log(Err, "", "!! %s", line)
	}
	l.log(Err, "", "%s", bar)
}

func (l *Logger) log(level int, kind, format string, args ...any) {
	msg := "ofsroot: " + kind + fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.Lines = append(l.Lines, msg)
	if l.KmsgPath == "" {
		l.toConsole(msg)
		return
	}
	if len(l.pending) > 0 && l.writeKmsg(Notice, l.pending[0]) {
		// /dev/kmsg is there now: the held lines go first, in order.
		for _, p := range l.pending[1:] {
			l.writeKmsg(Notice, p)
		}
		l.pending = nil
	}
	if !l.writeKmsg(level, msg) {
		if level >= Notice {
			l.pending = append(l.pending, msg)
			return
		}
		for _, p := range l.pending {
			l.toConsole(p)
		}
		l.pending = nil
		l.toConsole(msg)
		return
	}
	if level < Notice && level >= l.consoleLevel() {
		l.toConsole(msg) // a warning the kernel keeps off the console
	}
}

func (l *Logger) toConsole(msg string) {
	if l.Console != nil {
		fmt.Fprintln(l.Console, msg)
	}
}

// consoleLevel is ConsoleLevel, asked until it answers (before /proc is
// mounted it cannot), then remembered.
func (l *Logger) consoleLevel() int {
	if l.level == 0 && l.ConsoleLevel != nil {
		l.level = l.ConsoleLevel()
	}
	return l.level
}

// writeKmsg opens /dev/kmsg for each line: the kernel rate-limits writes
// per open file (ten lines per five seconds), and a boot logs more.
func (l *Logger) writeKmsg(level int, msg string) bool {
	f, err := os.OpenFile(l.KmsgPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "<%d>%s\n", level, msg)
	return err == nil
}

// ProcConsoleLevel reads the console log level from
// /proc/sys/kernel/printk; 0 (echo nothing) when it cannot be read, so
// the logger then writes to the console itself.
func ProcConsoleLevel() int {
	data, err := os.ReadFile("/proc/sys/kernel/printk")
	if err != nil {
		return 0
	}
	return ParseConsoleLevel(string(data))
}

// ParseConsoleLevel reads the first number of /proc/sys/kernel/printk.
func ParseConsoleLevel(s string) int {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return n
}
