package main

import (
	"encoding/base64"
	"errors"
	"os/exec"
	"strings"
	"time"
)

// runRequested runs each program the kernel command line names with
// probe.run=PROGRAM[,ARG...] (the word may repeat; commas separate the
// arguments), in order, and reports for each:
//
//	PROBE run.cmd=PROGRAM ARG...
//	PROBE run.exit=N          (-1 when it could not start or timed out)
//	PROBE run.out=base64:...  (stdout and stderr together)
//
// This is how boot tests exercise on-device tools such as ofsctl inside
// a booted guest.
func runRequested(cmdline string) {
	for _, w := range strings.Fields(cmdline) {
		spec, ok := strings.CutPrefix(w, "probe.run=")
		if !ok || spec == "" {
			continue
		}
		argv := strings.Split(spec, ",")
		report("run.cmd", "%s", strings.Join(argv, " "))
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"}
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		code := -1
		if err := cmd.Start(); err != nil {
			out.WriteString("probe: start: " + err.Error())
		} else {
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				var ee *exec.ExitError
				switch {
				case err == nil:
					code = 0
				case errors.As(err, &ee):
					code = ee.ExitCode()
				default:
					out.WriteString("probe: wait: " + err.Error())
				}
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				out.WriteString("probe: killed after 60 s")
			}
		}
		report("run.exit", "%d", code)
		report("run.out", "base64:%s", base64.StdEncoding.EncodeToString([]byte(out.String())))
	}
}
