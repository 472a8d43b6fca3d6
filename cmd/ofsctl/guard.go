package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ofsroot/ofsroot/pkg/cli"
	"github.com/ofsroot/ofsroot/pkg/ramguard"
)

func init() {
	program.Commands["guard"] = cli.Command{
		Summary: "watch the RAM layer's use and inodes; past the config file's thresholds warn, then act (log, command, reboot)",
		Run:     runGuard,
	}
}

func runGuard(args []string, stdout, stderr io.Writer) error {
	fs := program.FlagSet("guard", "[--config FILE] [--once | --check-config]", stderr)
	path := fs.String("config", ramguard.DefaultConfigPath, "the configuration file (key = value lines); missing: the defaults")
	once := fs.Bool("once", false, "look once, run the action if due, print the level; exit 0 ok, 3 warning, 4 past the action threshold")
	check := fs.Bool("check-config", false, "only read the configuration and print it")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: guard takes no arguments", cli.ErrUsage)
	}
	cfg := ramguard.Default()
	f, err := os.Open(*path)
	switch {
	case errors.Is(err, os.ErrNotExist) && *path == ramguard.DefaultConfigPath:
		fmt.Fprintf(stderr, "ofsctl guard: no %s; using the defaults\n", *path)
	case err != nil:
		return err
	default:
		cfg, err = ramguard.ParseConfig(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", *path, err)
		}
	}
	if *check {
		fmt.Fprintf(stdout, "path = %s\ninterval = %s\nwarn_use = %g%%\nact_use = %g%%\nwarn_inodes = %g%%\nact_inodes = %g%%\naction = %s\ncommand = %s\nreboot_command = %s\n",
			cfg.Path, cfg.Interval, cfg.WarnUse, cfg.ActUse, cfg.WarnInodes, cfg.ActInodes, cfg.Action, cfg.Command, cfg.RebootCommand)
		return nil
	}
	g := &ramguard.Guard{Config: cfg, Logf: func(f string, a ...any) { fmt.Fprintf(stderr, f+"\n", a...) }}
	if *once {
		lvl, err := g.Check()
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, lvl)
		switch lvl {
		case ramguard.Warn:
			return cli.ExitCode(3)
		case ramguard.Act:
			return cli.ExitCode(4)
		}
		return nil
	}
	fmt.Fprintf(stderr, "ofsctl guard: watching %s every %s (warn %g%%/%g%% inodes, act %g%%/%g%% inodes: %s)\n", cfg.Path, cfg.Interval, cfg.WarnUse, cfg.WarnInodes, cfg.ActUse, cfg.ActInodes, cfg.Action)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := g.Loop(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
