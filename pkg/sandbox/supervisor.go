package sandbox

import (
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Restarts is how often a supervisor restarts the firmware after it
// ends: Always, or a count (0 = never).
type Restarts int

// Always restarts for ever.
const Always Restarts = -1

// ParseRestarts reads "always", "never" or a count.
func ParseRestarts(s string) (Restarts, error) {
	switch strings.ToLower(s) {
	case "always":
		return Always, nil
	case "never", "no":
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q: want always, never or a count", s)
	}
	return Restarts(n), nil
}

func (r Restarts) String() string {
	switch {
	case r < 0:
		return "always"
	case r == 0:
		return "never"
	}
	return strconv.Itoa(int(r))
}

// Ending is how one run of the firmware ended.
type Ending struct {
	PID    int
	Status unix.WaitStatus
	Err    error // the start failed; Status is meaningless
}

func (e Ending) String() string {
	switch {
	case e.Err != nil:
		return fmt.Sprintf("could not start: %v", e.Err)
	case IsChildFailure(e.Status):
		return fmt.Sprintf("the sandbox could not be set up (exit status %d; its message is above)", ChildFailed)
	case e.Status.Exited():
		return fmt.Sprintf("exited with status %d", e.Status.ExitStatus())
	case e.Status.Signaled():
		s := fmt.Sprintf("killed by signal %d (%s)", int(e.Status.Signal()), unix.SignalName(e.Status.Signal()))
		if e.Status.CoreDump() {
			s += ", core dumped"
		}
		return s
	}
	return fmt.Sprintf("ended with wait status %#x", uint32(e.Status))
}

// Supervisor runs the firmware, waits for it, and restarts it by
// Policy. It never panics out: a panic in Start or Wait counts as a
// failed run.
type Supervisor struct {
	// Start starts one run and returns its PID.
	Start func() (int, error)
	// Wait waits for pid to end. ReapAll (for PID 1) reaps every child
	// that ends meanwhile, as an init must.
	Wait func(pid int) (unix.WaitStatus, error)
	// Restarts is the policy; Delay is the pause before each restart.
	Restarts Restarts
	Delay    time.Duration
	Logf     func(format string, args ...any)
	// Sleep is time.Sleep (a seam for tests).
	Sleep func(time.Duration)
	// Stopped, when set, is asked before each restart: true ends the
	// supervision (the user asked the firmware to stop).
	Stopped func() bool
}

// Run starts the firmware and supervises it until it has ended and no
// restart is left. It returns every ending, in order.
func (s *Supervisor) Run() []Ending {
	if s.Wait == nil {
		s.Wait = WaitPID
	}
	if s.Sleep == nil {
		s.Sleep = time.Sleep
	}
	if s.Logf == nil {
		s.Logf = func(string, ...any) {}
	}
	var endings []Ending
	for run := 0; ; run++ {
		e := s.once()
		endings = append(endings, e)
		s.Logf("sandbox: the firmware (pid %d) %s", e.PID, e)
		restartsLeft := s.Restarts < 0 || run < int(s.Restarts)
		if IsChildFailure(e.Status) || e.Err != nil {
			// A broken sandbox does not mend itself.
			restartsLeft = false
			s.Logf("sandbox: not restarting: the sandbox itself failed")
		}
		if restartsLeft && s.Stopped != nil && s.Stopped() {
			s.Logf("sandbox: not restarting: stopped")
			return endings
		}
		if !restartsLeft {
			if s.Restarts >= 0 && run >= int(s.Restarts) {
				s.Logf("sandbox: no restart left (policy: restart %s)", s.Restarts)
			}
			return endings
		}
		if s.Restarts < 0 {
			s.Logf("sandbox: restarting the firmware (restart %d; policy: always) in %s", run+1, s.Delay)
		} else {
			s.Logf("sandbox: restarting the firmware (restart %d of %d) in %s", run+1, s.Restarts, s.Delay)
		}
		s.Sleep(s.Delay)
	}
}

func (s *Supervisor) once() (e Ending) {
	defer func() {
		if r := recover(); r != nil {
			e.Err = fmt.Errorf("BUG: supervisor panicked: %v\n%s", r, debug.Stack())
		}
	}()
	pid, err := s.Start()
	if err != nil {
		return Ending{Err: err}
	}
	ws, err := s.Wait(pid)
	return Ending{PID: pid, Status: ws, Err: err}
}

// WaitPID waits for pid only.
func WaitPID(pid int) (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		return ws, err
	}
}

// ReapAll waits for pid and reaps every other child that ends meanwhile
// (orphans re-parented to PID 1), as an init must. Children that had
// already ended when pid did are reaped too before it returns: the
// kernel's wait4(-1) looks at the calling thread's children first, so
// pid may be found before an older zombie forked from another thread.
func ReapAll(pid int) (unix.WaitStatus, error) {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return ws, err
		}
		if got == pid {
			reapEnded()
			return ws, nil
		}
	}
}

// reapEnded reaps every child that has ended, without waiting for any.
func reapEnded() {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || got <= 0 {
			return
		}
	}
}
