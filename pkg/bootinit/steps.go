package bootinit

import (
	"fmt"
	"time"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/klog"
)

// Step is one thing the init does. Name reads like the shell command it
// stands for, so the boot log can be replayed by hand.
type Step struct {
	Name string
	// Optional steps log their failure and the boot goes on; a required
	// step's failure stops the sequence.
	Optional bool
	Do       func() error
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

// Run runs steps until a required one fails, and returns that failure.
func (x *Executor) Run(steps ...Step) error {
	for _, s := range steps {
		x.Log.Infof("%s", s.Name)
		start := x.Now()
		err := s.Do()
		rec := bootstatus.Step{Name: s.Name, Seconds: (x.Now() - start).Seconds(), Optional: s.Optional}
		if err != nil {
			rec.Error = err.Error()
		}
		x.Steps = append(x.Steps, rec)
		if err == nil {
			continue
		}
		if s.Optional {
			x.Log.Warnf("%s: %v (optional, going on)", s.Name, err)
			continue
		}
		return &StepError{Step: s.Name, Err: err}
	}
	return nil
}
