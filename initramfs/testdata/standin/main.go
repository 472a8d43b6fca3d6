// Command standin is a stand-in /init for the initramfs builder's tests:
// it loads the modules the archive lists, prints one line per module and
// a closing marker on the console, and powers the machine off.
package main

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/kmod/modload"
)

func main() {
	fmt.Println("OFSROOT-STANDIN: started")
	f, err := os.Open(modload.OrderFile)
	if err != nil {
		fmt.Println("OFSROOT-STANDIN: no module order:", err)
	} else {
		entries, err := modload.ParseOrder(f)
		f.Close()
		if err != nil {
			fmt.Println("OFSROOT-STANDIN: bad module order:", err)
		}
		for _, e := range entries {
			err := modload.Load(e.Path, e.Params)
			switch {
			case err == nil:
				fmt.Printf("OFSROOT-STANDIN: module %s loaded\n", e.Name())
			case errors.Is(err, unix.EEXIST):
				fmt.Printf("OFSROOT-STANDIN: module %s present\n", e.Name())
			case errors.Is(err, unix.ENODEV):
				fmt.Printf("OFSROOT-STANDIN: module %s skipped: no device\n", e.Name())
			default:
				fmt.Printf("OFSROOT-STANDIN: module %s FAILED: %v\n", e.Name(), err)
			}
		}
	}
	fmt.Println("OFSROOT-STANDIN: done")
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// reboot(2) should not return; if it does, the test times out.
	select {}
}
