package main

import (
	"github.com/ofsroot/ofsroot/pkg/units"

	"github.com/ofsroot/ofsroot/pkg/cli"

	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/initramfs"
	"github.com/ofsroot/ofsroot/pkg/bootlab"
)

func init() {
	program.Commands["demo"] = cli.Command{
		Summary: "boot a board in QEMU with the protected root and show what its init sees (in the source tree, with Go)",
		Run:     runDemo,
	}
}

// runDemo fetches the board's kernel, builds the initramfs and a probe
// root, boots it with overlayfs=yes ofs-size=20, streams the console,
// then sums up what the probe saw.
func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := program.FlagSet("demo", "[--board NAME] [--append WORDS] [--keep]", stderr)
	boardName := fs.String("board", "qemu-x86_64", "board to boot ("+strings.Join(board.Emulated(), ", ")+")")
	appendWords := fs.String("append", "", "more kernel command-line words, e.g. 'ofs-size=64M'")
	keep := fs.Bool("keep", false, "keep the work folder (images, initramfs, console log)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	b, err := board.Lookup(*boardName)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if b.QEMU.Unsupported != "" {
		return fmt.Errorf("%w: QEMU cannot boot %s: %s (boards it can boot: %s)", errUsage, b.Name, b.QEMU.Unsupported, strings.Join(board.Emulated(), ", "))
	}
	cache, work, done, err := labFolders("demo", *keep, stdout)
	if err != nil {
		return err
	}
	defer done()

	fmt.Fprintf(stdout, "demo: preparing %s (kernel into %s, probe root into %s)\n", b.Name, cache, work)
	s, err := bootlab.NewSetup(b, cache, work)
	if err != nil {
		return err
	}
	initrd, res, err := s.Initramfs(initramfs.Options{})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "demo: kernel %s, initramfs %s (%s unpacked)\n", s.Kernel.Version,
		units.Bytes(uint64(res.CompressedBytes)), units.Bytes(uint64(res.UncompressedBytes)))

	img, root := s.DefaultRoot()
	words := append([]string{root, "overlayfs=yes", "ofs-size=20"}, strings.Fields(*appendWords)...)
	fmt.Fprintf(stdout, "demo: booting with: console=%s %s\n\n", b.Console, strings.Join(words, " "))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	run, bootErr := s.Run(ctx, bootlab.RunSpec{
		Initrd: initrd,
		Image:  img,
		Append: words,
		Dir:    filepath.Join(work, "boot"),
		Stream: &lineTrimmer{w: stdout, max: 160},
	})
	if run == nil {
		return bootErr
	}
	fmt.Fprintf(stdout, "\ndemo: what the real init saw on %s:\n%s", b.Name, run.Summary())
	if *keep {
		fmt.Fprintf(stdout, "demo: console log: %s\n", run.Console.Log)
	}
	switch {
	case bootErr != nil:
		return bootErr
	case run.Report == nil:
		return errors.New("the probe did not report; see the console above")
	case !run.ImageUnchanged():
		return errors.New("the root image was written")
	}
	return nil
}

// lineTrimmer passes console output on, cutting lines longer than max
// (the probe's base64 blobs) so that the stream stays readable. The full
// console is in the log file.
type lineTrimmer struct {
	w   io.Writer
	max int
	col int
	cut bool
}

func (l *lineTrimmer) Write(p []byte) (int, error) {
	var out []byte
	for _, c := range p {
		switch {
		case c == '\n':
			l.col, l.cut = 0, false
			out = append(out, c)
		case l.col < l.max:
			l.col++
			out = append(out, c)
		case !l.cut:
			l.cut = true
			out = append(out, "…"...)
		}
	}
	if _, err := l.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
