// Package ramguard watches the RAM layer of a protected root (the tmpfs
// at /mnt/root-RW, or the filesystem on a zram device, whose RAM against
// its cap counts as use too) so that a long uptime does not fill it
// unnoticed: past
// a warning threshold of space or inodes it logs a warning; past an
// action threshold it logs and runs the configured action once (log
// only, a command, or a controlled reboot through the system's reboot
// command), and re-arms when use drops below the warning threshold.
//
// The configuration is a small key=value file (ParseConfig, pure);
// Guard.Check is one look, Guard.Loop looks every interval.
package ramguard

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// DefaultConfigPath is where ofsctl guard reads its configuration.
const DefaultConfigPath = "/etc/ofsroot/ramguard.conf"

// Action is what happens past the action threshold.
type Action string

const (
	ActionLog     Action = "log"     // a log line only
	ActionCommand Action = "command" // run Command with /bin/sh -c
	ActionReboot  Action = "reboot"  // run RebootCommand: a clean reboot by the init
)

// Config is the guard's configuration. Thresholds are percentages of the
// layer's size or inodes; 0 disables one.
type Config struct {
	Path          string        // path = /mnt/root-RW
	Interval      time.Duration // interval = 30s
	WarnUse       float64       // warn_use = 80%
	ActUse        float64       // act_use = 95%
	WarnInodes    float64       // warn_inodes = 80%
	ActInodes     float64       // act_inodes = 95%
	Action        Action        // action = log|command|reboot
	Command       string        // command = /usr/local/sbin/clean-ram
	RebootCommand string        // reboot_command = reboot
}

// Default is the configuration without a file.
func Default() Config {
	return Config{Path: "/mnt/root-RW", Interval: 30 * time.Second, WarnUse: 80, ActUse: 95, WarnInodes: 80, ActInodes: 95, Action: ActionLog, RebootCommand: "reboot"}
}

// ConfigError is a bad line of the configuration.
type ConfigError struct {
	Line int
	Text string
	Msg  string
}

func (e *ConfigError) Error() string { return fmt.Sprintf("line %d %q: %s", e.Line, e.Text, e.Msg) }

// ParseConfig reads key = value lines over Default(); '#' starts a
// comment, blank lines are ignored. Unknown keys and bad values are
// errors naming the line.
func ParseConfig(r io.Reader) (Config, error) {
	c := Default()
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		raw := sc.Text()
		line := raw
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		bad := func(msg string) error { return &ConfigError{Line: n, Text: raw, Msg: msg} }
		if !ok || key == "" {
			return c, bad("want key = value")
		}
		var err error
		switch key {
		case "path":
			if !strings.HasPrefix(val, "/") {
				return c, bad("path must be absolute")
			}
			c.Path = val
		case "interval":
			c.Interval, err = time.ParseDuration(val)
			if err != nil || c.Interval < time.Second {
				return c, bad("interval: a duration of at least 1s, such as 30s or 5m")
			}
		case "warn_use":
			c.WarnUse, err = parsePercent(val)
		case "act_use":
			c.ActUse, err = parsePercent(val)
		case "warn_inodes":
			c.WarnInodes, err = parsePercent(val)
		case "act_inodes":
			c.ActInodes, err = parsePercent(val)
		case "action":
			switch a := Action(val); a {
			case ActionLog, ActionCommand, ActionReboot:
				c.Action = a
			default:
				return c, bad("action: log, command or reboot")
			}
		case "command":
			c.Command = val
		case "reboot_command":
			if val == "" {
				return c, bad("reboot_command is empty")
			}
			c.RebootCommand = val
		default:
			return c, bad("unknown key (path, interval, warn_use, act_use, warn_inodes, act_inodes, action, command, reboot_command)")
		}
		if err != nil {
			return c, bad(err.Error())
		}
	}
	if err := sc.Err(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate checks the thresholds and action agree.
func (c Config) Validate() error {
	if c.WarnUse > 0 && c.ActUse > 0 && c.WarnUse > c.ActUse {
		return fmt.Errorf("warn_use %g%% is above act_use %g%%", c.WarnUse, c.ActUse)
	}
	if c.WarnInodes > 0 && c.ActInodes > 0 && c.WarnInodes > c.ActInodes {
		return fmt.Errorf("warn_inodes %g%% is above act_inodes %g%%", c.WarnInodes, c.ActInodes)
	}
	if c.Action == ActionCommand && c.Command == "" {
		return fmt.Errorf("action = command needs a command = line")
	}
	return nil
}

func parsePercent(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || v < 0 || v > 100 {
		return 0, fmt.Errorf("a percentage from 0 to 100, such as 80%%")
	}
	return v, nil
}
