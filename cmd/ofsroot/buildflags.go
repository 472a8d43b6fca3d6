package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/initramfs"
)

// buildFlags are the flags of every command that builds an initramfs
// (initramfs, bootfiles).
type buildFlags struct {
	board, kernel, output, compress, init *string
	// kernelVersion is set by the commands that take --kernel-version.
	kernelVersion *string
}

// addBuildFlags defines the shared flags on fs; boardHelp and outputHelp
// say what the command does with them.
func addBuildFlags(fs *flag.FlagSet, boardHelp, outputHelp string) *buildFlags {
	return &buildFlags{
		board:    fs.String("board", "", boardHelp),
		kernel:   fs.String("kernel", "", "the kernel: a Debian linux-image `DEB`, or the DIR that dpkg -x made of one, or a root DIR with installed kernels (with --kernel-version)"),
		output:   fs.String("output", "", outputHelp),
		compress: fs.String("compress", "", "`METHOD` of compression of the initramfs: "+strings.Join(initramfs.Compressions, ", ")+" (default, of what the kernel's boot/config-VERSION says it unpacks: zstd on amd64, gzip on the other boards; one the kernel cannot unpack is refused)"),
		init:     fs.String("init", "", "`PREBUILT` init binary (static, for the board's architecture); default: the init the package ships in ../lib/ofsroot beside this program, else go build ./cmd/init of the source tree"),
	}
}

// parse parses args and checks the shared flags before anything slow
// happens: all usage errors (exit 2) name the flag and what to do. It
// returns the board and SOURCE_DATE_EPOCH (0 when unset).
func (f *buildFlags) parse(fs *flag.FlagSet, args []string, command, synopsis string) (board.Board, int64, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return board.Board{}, 0, err
		}
		return board.Board{}, 0, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return board.Board{}, 0, fmt.Errorf("%w: unexpected arguments %q (ofsroot %s %s)", errUsage, fs.Args(), command, synopsis)
	}
	if f.kernelVersion != nil && *f.kernelVersion != "" && *f.kernel == "" {
		*f.kernel = "/"
	}
	var missing []string
	for _, m := range []struct{ name, value string }{{"--board", *f.board}, {"--kernel", *f.kernel}, {"--output", *f.output}} {
		if m.value == "" {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return board.Board{}, 0, fmt.Errorf("%w: missing %s (ofsroot %s %s)", errUsage, strings.Join(missing, ", "), command, synopsis)
	}
	b, err := board.Lookup(*f.board)
	if err != nil {
		return board.Board{}, 0, fmt.Errorf("%w: %v", errUsage, err)
	}
	if !initramfsKnownCompression(*f.compress) {
		return board.Board{}, 0, fmt.Errorf("%w: --compress %q: known methods are %s", errUsage, *f.compress, strings.Join(initramfs.Compressions, ", "))
	}
	if _, err := os.Stat(*f.kernel); err != nil {
		return board.Board{}, 0, fmt.Errorf("%w: --kernel %s: %v; give a linux-image .deb (apt-get download linux-image-...) or the folder `dpkg -x` made of one",
			errUsage, *f.kernel, initramfsPathErr(err))
	}
	if *f.init != "" {
		if _, err := os.Stat(*f.init); err != nil {
			return board.Board{}, 0, fmt.Errorf("%w: --init %s: %v", errUsage, *f.init, initramfsPathErr(err))
		}
	}
	var epoch int64
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		epoch, err = strconv.ParseInt(s, 10, 64)
		if err != nil || epoch < 0 || epoch > 1<<32-1 {
			return board.Board{}, 0, fmt.Errorf("%w: SOURCE_DATE_EPOCH=%q is not a time in seconds since 1970 that cpio can hold", errUsage, s)
		}
	}
	return b, epoch, nil
}
