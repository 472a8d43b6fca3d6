package bootinit

import (
	"fmt"
	"time"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/klog"
)

// Step is one thing the init does. Name reads like the shell command it
// stands for, so the boot log can be replayed by hand.
//
// The boot is declared as one list before anything runs (bootSteps), so
// three fields let an entry depend on what earlier steps learn:
//
//   - When skips it unless the boot is in the mode it belongs to;
//   - Steps makes it when it comes up, from what is known by then (the
//     root's path and filesystem, the RAM layer's size...): a step whose
//     name and work depend on earlier ones, or a group of them;
//   - OnError handles the failure of a required step (of a group: of any
//     of its steps), as the fail-closed fallbacks do.
type Step struct {
	Name string
	// Optional steps log their failure and the boot goes on; a required
	// step's failure stops the sequence (or its group: see OnError).
	Optional bool
	Do       func() error

	// When, if set, is asked as the entry comes up: false skips it. A
	// skipped entry is neither logged nor recorded in the status: it did
	// nothing, and the log and status of a boot list what was done in
	// it, the same whichever way the list is written.
	When func() bool
	// Steps, if set, makes the steps this entry stands for as it comes
	// up (Name, Optional and Do are then unused): they are run in order
	// as a group, each logged and recorded as its own step; the first
	// required one to fail ends the group.
	Steps func() []Step
	// OnError, if set, is given the failure of the required step (or of
	// the group): what it returns stands for it, nil letting the boot go
	// on (the degraded boot, the persistent layer's fallback).
	OnError func(error) error
}

// Executor runs steps in order, logging and timing each one.
type Executor struct {
	Log *klog.Logger
	// Now returns the kernel's monotonic clock.
	Now func() time.Duration
	// Steps records what ran, for the status file.
	Steps []bootstatus.Step
}

// StepError is a required step that failed.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("%s: %v", e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// Run runs steps until a required one fails (and its OnError, if any,
// does not take the failure), and returns that failure.
func (x *Executor) Run(steps ...Step) error {
	for _, s := range steps {
		if s.When != nil && !s.When() {
			continue
		}
		var err error
		if s.Steps != nil {
			err = x.Run(s.Steps()...)
		} else {
			err = x.run(s)
		}
		if err != nil && s.OnError != nil {
			err = s.OnError(err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// run runs one step: logged, timed, recorded.
func (x *Executor) run(s Step) error {
	x.Log.Infof("%s", s.Name)
	start := x.Now()
	err := s.Do()
	rec := bootstatus.Step{Name: s.Name, Seconds: (x.Now() - start).Seconds(), Optional: s.Optional}
	if err != nil {
		rec.Error = err.Error()
	}
	x.Steps = append(x.Steps, rec)
	if err == nil {
		return nil
	}
	if s.Optional {
		x.Log.Warnf("%s: %v (optional, going on)", s.Name, err)
		return nil
	}
	return &StepError{Step: s.Name, Err: err}
}

// one makes a step as it comes up (Step.Steps), by build, from what
// earlier steps learned.
func one(build func() Step) func() []Step {
	return func() []Step { return []Step{build()} }
}
