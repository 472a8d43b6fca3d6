// Command init is the ofsroot /init: PID 1 of the initramfs. It builds the
// protected root the kernel command line asks for and switch_roots into
// the real init. See package bootinit for the steps, and the README for
// the command-line words.
//
// It is built static and cgo-free (CGO_ENABLED=0) by `ofsroot initramfs`.
package main

import (
	"fmt"
	"os"

	"github.com/ofsroot/ofsroot/pkg/bootinit"
	"github.com/ofsroot/ofsroot/pkg/sandbox"
	"github.com/ofsroot/ofsroot/pkg/version"
)

const usage = `ofsroot init %s: the /init of an ofsroot initramfs.

It runs only as PID 1, started by the kernel. Kernel command-line words:
  overlayfs=yes|no       protect the root with a RAM overlay (default no)
  ofs-size=N|N%%|NK|NM|NG  size of the RAM layer: percent of RAM (default 50) or bytes
  ofs-rescue=reboot|halt|shell   when there is no root to boot (default reboot)
  ofs-rescue-delay=S     seconds before the rescue reboot (default 10)
  overlayfs=sandbox      the protected root, with its init run in namespaces under a supervisor
  ofs-sandbox-restart=always|never|N   restarts after the firmware ends, then reboot (default 3)
  ofs-sandbox-net=private|host         the sandbox's network (default private: only lo)
  ofs-sandbox-hostname=NAME            (default: the root's /etc/hostname)
  ofs-sandbox-dev=NAME,...             extra /dev nodes for the sandbox
  root= rootfstype= rootflags= ro rw rootwait[=S] rootdelay=S init=   as the kernel's
Build an initramfs with: ofsroot initramfs --board NAME --kernel DEB --output FILE
`

func main() {
	// With overlayfs=sandbox the init re-executes itself as the sandbox
	// child; that copy sets the sandbox up and execs the root's init.
	sandbox.RunChildIfRequested()
	if os.Getpid() != 1 {
		fmt.Fprintf(os.Stderr, usage, version.Get())
		if len(os.Args) > 1 && (os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help") {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "refusing to run: not PID 1 (this program mounts over / and deletes the initramfs)")
		os.Exit(2)
	}
	bootinit.Main()
}
