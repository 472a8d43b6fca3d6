package bootinit

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/cmdline"
)

// rescue is the end of every boot that could not hand over: it says why,
// then follows the rescue policy. It never returns.
func (b *boot) rescue(err error) {
	if err == nil {
		err = errors.New("the hand-over returned without an error")
	}
	var se *StepError
	if errors.As(err, &se) {
		b.log.Errorf("%v", se.Err)
		b.log.Errorf("(while: %s)", se.Step)
	} else {
		b.log.Errorf("%v", err)
	}
	policy, delay := b.cfg.Rescue, b.cfg.RescueDelay
	if policy == "" {
		policy, delay = cmdline.RescueReboot, cmdline.DefaultRescueDelay
	}
	if policy == cmdline.RescueShell {
		// ofsroot initramfs --shell puts the shell here.
		const sh = "/bin/sh"
		if fi, statErr := os.Stat(sh); statErr == nil && fi.Mode().IsRegular() {
			b.log.Errorf("rescue: starting %s on the console (ofs-rescue=shell); exit it to reboot", sh)
			b.runShell([]string{sh})
			policy, delay = cmdline.RescueReboot, 0
		} else {
			b.log.Errorf("rescue: ofs-rescue=shell but this initramfs has no shell (build it with ofsroot initramfs --shell); rebooting instead")
			policy = cmdline.RescueReboot
		}
	}
	switch policy {
	case cmdline.RescueHalt:
		b.log.Errorf("rescue: halting (ofs-rescue=halt); power-cycle the device to retry")
		unix.Sync()
		unix.Reboot(rebootCmd(unix.LINUX_REBOOT_CMD_HALT))
	default:
		b.log.Errorf("rescue: rebooting in %d s (ofs-rescue=reboot; ofs-rescue=halt or ofs-rescue=shell to change)", int(delay.Seconds()))
		time.Sleep(delay)
		unix.Sync()
		unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	}
	// Reboot and halt do not return when they work. If they did, PID 1
	// still must not exit.
	for {
		b.log.Errorf("rescue: the kernel refused to %s; waiting", policy)
		time.Sleep(time.Hour)
	}
}

// runShell runs a shell on the console and waits for it.
func (b *boot) runShell(argv []string) {
	p, err := os.StartProcess(argv[0], argv, &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Env:   append(os.Environ(), "PS1=(ofsroot rescue) # "),
	})
	if err != nil {
		b.log.Errorf("rescue: starting %s: %v", argv[0], err)
		return
	}
	p.Wait()
}

// rebootCmd passes a reboot(2) command word as the int unix.Reboot
// takes: LINUX_REBOOT_CMD_HALT (0xcdef0123) overflows a 32-bit int as a
// constant, so it goes through a variable.
func rebootCmd(cmd uint32) int { return int(int32(cmd)) }
