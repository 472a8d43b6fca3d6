package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/cli"
	"github.com/ofsroot/ofsroot/pkg/diskimage"
	"github.com/ofsroot/ofsroot/pkg/overlaydiff"
	"github.com/ofsroot/ofsroot/pkg/sandbox"
	"github.com/ofsroot/ofsroot/pkg/sandbox/store"
	"github.com/ofsroot/ofsroot/pkg/switchroot"
	"github.com/ofsroot/ofsroot/pkg/units"
)

func init() {
	// ofsroot re-executes itself as the sandbox child: that copy sets the
	// sandbox up and execs the firmware's init. It must take over before
	// anything else runs, so it is here and not in a command.
	sandbox.RunChildIfRequested()
	program.Commands["sandbox"] = cli.Command{
		Summary: "run a device firmware's own init on this PC in namespaces, each instance on its own layer (run, list, stop, drop, diff, remount)",
		Run:     runSandbox,
	}
}

const sandboxUsage = `  ofsroot sandbox run FIRMWARE [--name N] [--state DIR] [--net private|host] [--init PATH] [--restart always|never|N]
                       [--memory SIZE] [--pids N] [--layer-size SIZE] [-- ARGS]
      FIRMWARE is a folder or an ext2/3/4 or squashfs image; it is mounted read-only
      and never written. Each run without --name makes a new instance; --name of a
      stopped instance goes on with its layer. Runs in the foreground; Ctrl-C stops it.
      Limits: --memory (default 1G) and --pids (default 4096) in the instance's own
      cgroup (0: none); --layer-size (default 1G, fixed when the instance is made)
      caps what the firmware can write: then it gets ENOSPC.
  ofsroot sandbox list [--state DIR]
  ofsroot sandbox stop NAME [--now] [--state DIR]
  ofsroot sandbox drop NAME [--state DIR]         remove a stopped instance's layer
  ofsroot sandbox diff NAME [--json] [--state DIR] what the instance added (A), changed (M),
                                                  deleted (D), made opaque (O)
  ofsroot sandbox remount NAME [--state DIR]      pick up changes to a firmware folder
  ofsroot sandbox profile                         print the AppArmor profile
State: DIR/instances/NAME/{instance.json,ro,layer.img,layer/{upper,work},union} (default ` + store.DefaultStateDir + `, root only).`

func runSandbox(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(stdout, "Usage:\n%s\n", sandboxUsage)
		if len(args) == 0 {
			return fmt.Errorf("%w: which sandbox command?", errUsage)
		}
		return nil
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "run":
		return sandboxRun(rest, stdout, stderr)
	case "list":
		return sandboxList(rest, stdout, stderr)
	case "stop":
		return sandboxStop(rest, stdout, stderr)
	case "drop":
		return sandboxDrop(rest, stdout, stderr)
	case "diff":
		return sandboxDiff(rest, stdout, stderr)
	case "remount":
		return sandboxRemount(rest, stdout, stderr)
	case "profile":
		fmt.Fprint(stdout, sandbox.Profile(sandbox.DefaultProfile))
		return nil
	}
	return fmt.Errorf("%w: no sandbox command %q (run, list, stop, drop, diff, remount, profile)", errUsage, sub)
}

// parseInterspersed parses flags anywhere among the positional
// arguments before "--"; what follows "--" is returned apart.
func parseInterspersed(fs *flag.FlagSet, args []string) (positional, after []string, err error) {
	for i, a := range args {
		if a == "--" {
			args, after = args[:i], args[i+1:]
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		if fs.NArg() == 0 {
			return positional, after, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func needRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (it mounts and makes namespaces): run it with sudo")
	}
	return nil
}

// oneName parses a command that takes one instance NAME.
func oneName(cmd string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (store.Store, string, error) {
	fs := program.FlagSet("sandbox", cmd+" NAME [--state DIR]", stderr)
	state := fs.String("state", store.DefaultStateDir, "state folder")
	if extra != nil {
		extra(fs)
	}
	pos, after, err := parseInterspersed(fs, args)
	if err != nil {
		return store.Store{}, "", err
	}
	if len(pos) != 1 || len(after) > 0 {
		return store.Store{}, "", fmt.Errorf("%w: sandbox %s takes one instance NAME", errUsage, cmd)
	}
	if err := store.CheckName(pos[0]); err != nil {
		return store.Store{}, "", fmt.Errorf("%w: %v", errUsage, err)
	}
	return store.Store{Dir: *state}, pos[0], nil
}

func sandboxRun(args []string, stdout, stderr io.Writer) error {
	fs := program.FlagSet("sandbox", "run FIRMWARE [--name N] [--state DIR] [--net private|host] [--init PATH] [--restart POLICY] [-- ARGS]", stderr)
	name := fs.String("name", "", "instance name (default: the firmware's hash, shortened, made unique)")
	state := fs.String("state", store.DefaultStateDir, "state folder")
	netFlag := fs.String("net", "private", "network: private (only lo) or host")
	initPath := fs.String("init", "", "the firmware's init, a path inside it (default: the first of "+strings.Join(switchroot.DefaultInits, ", ")+")")
	restartFlag := fs.String("restart", "never", "restart the firmware when it ends: always, never or a count")
	hostname := fs.String("hostname", "", "host name inside (default: the instance name)")
	memFlag := fs.String("memory", "1G", "memory the firmware may use (memory.max of its cgroup; 0: no limit)")
	pids := fs.Int64("pids", 4096, "processes and threads the firmware may have (pids.max; 0: no limit)")
	layerFlag := fs.String("layer-size", "1G", "size of a new instance's layer, reserved on the state folder's disk")
	userns := fs.Bool("userns", true, "run the firmware in a user namespace: its root is an unprivileged uid range of the host (needs Linux 5.19 and idmapped-mount support in the firmware's and the state folder's filesystems; --userns=false runs it as the host's root, held by seccomp and dropped capabilities)")
	pos, fwArgs, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	memory, err := diskimage.ParseSize(*memFlag)
	if err != nil || memory < 0 {
		return fmt.Errorf("%w: --memory %q: want a size such as 512M or 2G, or 0", errUsage, *memFlag)
	}
	layerSize, err := diskimage.ParseSize(*layerFlag)
	if err != nil || layerSize < 8<<20 {
		return fmt.Errorf("%w: --layer-size %q: want a size of at least 8M, such as 256M or 2G", errUsage, *layerFlag)
	}
	if *pids < 0 {
		return fmt.Errorf("%w: --pids %d: want a count, or 0", errUsage, *pids)
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: sandbox run takes one FIRMWARE (a folder or an image)", errUsage)
	}
	net, err := sandbox.ParseNet(*netFlag)
	if err != nil {
		return fmt.Errorf("%w: --net: %v", errUsage, err)
	}
	restarts, err := sandbox.ParseRestarts(*restartFlag)
	if err != nil {
		return fmt.Errorf("%w: --restart %v", errUsage, err)
	}
	if *name != "" {
		if err := store.CheckName(*name); err != nil {
			return fmt.Errorf("%w: --name: %v", errUsage, err)
		}
	}
	if err := needRoot(); err != nil {
		return err
	}
	fw, err := filepath.Abs(pos[0])
	if err != nil {
		return err
	}
	db := store.Store{Dir: *state}
	if *userns {
		if err := searchable(filepath.Dir(db.Dir)); err != nil {
			return err
		}
	}
	cleaned, err := db.CleanStale()
	for _, n := range cleaned {
		fmt.Fprintf(stderr, "sandbox: unmounted what an earlier run of %s left mounted\n", n)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sandbox: warning: cleaning stale mounts: %v\n", err)
	}
	hash, kind, err := store.HashFirmware(fw)
	if err != nil {
		return fmt.Errorf("firmware %s: %w", fw, err)
	}

	inst, lock, err := claimInstance(db, *name, fw, kind, hash, stderr)
	if err != nil {
		return err
	}
	defer lock.Close()
	inst.Net, inst.PID = net, os.Getpid()
	if err := db.Save(inst); err != nil {
		return err
	}
	defer func() {
		if err := db.Unmount(inst.Name); err != nil {
			fmt.Fprintf(stderr, "sandbox: warning: %v\n", err)
		}
		inst.PID = 0
		db.Save(inst)
	}()
	if err := db.MakeLayer(inst, layerSize); err != nil {
		return err
	}
	if err := db.PickUIDBase(inst); err != nil {
		return err
	}
	if err := db.Save(inst); err != nil {
		return err
	}
	if err := db.MountLower(inst); err != nil {
		return fmt.Errorf("mounting the firmware %s read-only: %w", fw, err)
	}
	if err := db.MountLayer(inst.Name, false); err != nil {
		return fmt.Errorf("mounting the instance's layer %s: %w", db.Image(inst.Name), err)
	}
	if err := db.MountUnion(inst, *userns); err != nil {
		return fmt.Errorf("mounting the instance's overlay: %w", err)
	}
	union := db.Union(inst.Name)
	init := *initPath
	if init == "" {
		if init, err = switchroot.FindInitIn(union, switchroot.DefaultInits); err != nil {
			return fmt.Errorf("firmware %s has no init (%v); name it with --init", fw, err)
		}
	}
	if *hostname == "" {
		*hostname = inst.Name
	}
	plan := sandbox.PrepareAppArmor(sandbox.DefaultProfile)
	fmt.Fprintf(stderr, "sandbox: %s\n", plan.Note)
	var cg *sandbox.Cgroup
	if memory > 0 || *pids > 0 {
		cg, err = sandbox.NewCgroup(inst.Name, sandbox.Limits{Memory: memory, Pids: *pids})
		if err != nil {
			return fmt.Errorf("the instance's cgroup (for --memory and --pids): %w", err)
		}
		defer func() {
			if err := cg.Remove(); err != nil {
				fmt.Fprintf(stderr, "sandbox: warning: %v\n", err)
			}
		}()
	}
	cfg := sandbox.Config{
		Root: union, Init: init, Args: fwArgs, Hostname: *hostname, Net: net,
		Env:             []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/", "TERM=" + envOr("TERM", "linux")},
		AppArmorProfile: plan.Label,
		Cgroup:          cg,
	}
	if *userns {
		m := inst.IDMap()
		cfg.UserNS = &m
	}
	if isTerminal(os.Stdin) {
		if tty, err := os.Readlink("/proc/self/fd/0"); err == nil {
			cfg.Console = tty
		}
	}
	if cfg.UserNS != nil && cfg.Console != "" {
		// The firmware's root (an unprivileged uid of the host) opens
		// /dev/console by path: the terminal is lent to it for the
		// run, then given back.
		restore, err := lendTerminal(cfg.Console, int(cfg.UserNS.Host))
		if err != nil {
			fmt.Fprintf(stderr, "sandbox: warning: %v; the firmware keeps its standard input and output but cannot open /dev/console\n", err)
		} else {
			defer restore()
		}
	}
	out, copyDone, err := fileFor(stdout)
	if err != nil {
		return err
	}
	errOut, errCopyDone, err := fileFor(stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "sandbox: %s: running %s of %s (sha256 %.12s, %s) in %s; network %s; %s; %s\n", inst.Name, init, fw, hash, kind, union, net, limitsNote(memory, *pids, inst.LayerSize, cg), usernsNote(cfg.UserNS))

	var current atomic.Int64
	var stopped atomic.Bool
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	go func() {
		for s := range sigs {
			stopped.Store(true)
			pid := int(current.Load())
			if pid == 0 {
				continue
			}
			if s == syscall.SIGUSR1 {
				unix.Kill(pid, unix.SIGKILL)
				continue
			}
			// The firmware's init gets SIGTERM (systemd and busybox
			// init shut down on it), then SIGKILL after a grace time.
			unix.Kill(pid, unix.SIGTERM)
			time.AfterFunc(stopGrace, func() { unix.Kill(pid, unix.SIGKILL) })
		}
	}()
	sup := &sandbox.Supervisor{
		Start: func() (int, error) {
			p, err := sandbox.Start(cfg, os.Stdin, out, errOut)
			if err != nil {
				return 0, err
			}
			// The supervisor waits with wait4 by PID; the handle
			// (a pidfd) is not needed.
			pid := p.Pid
			p.Release()
			current.Store(int64(pid))
			return pid, nil
		},
		Wait:     sandbox.WaitPID,
		Restarts: restarts,
		Delay:    time.Second,
		Logf:     func(f string, a ...any) { fmt.Fprintf(stderr, f+"\n", a...) },
		Stopped:  stopped.Load,
	}
	endings := sup.Run()
	current.Store(0)
	out.Close()
	errOut.Close()
	copyDone()
	errCopyDone()
	last := endings[len(endings)-1]
	inst.LastEnding = last.String()
	switch {
	case last.Err != nil:
		return last.Err
	case sandbox.IsChildFailure(last.Status):
		return errors.New("the sandbox could not be set up (see above)")
	case last.Status.Exited():
		return cli.ExitCode(last.Status.ExitStatus())
	case last.Status.Signaled():
		return cli.ExitCode(128 + int(last.Status.Signal()))
	}
	return nil
}

// lendTerminal makes tty owned by uid until the returned function gives
// it back to its owner.
func lendTerminal(tty string, uid int) (func(), error) {
	var st unix.Stat_t
	if err := unix.Stat(tty, &st); err != nil {
		return nil, err
	}
	if err := unix.Chown(tty, uid, -1); err != nil {
		return nil, fmt.Errorf("lending the terminal %s to the firmware: %w", tty, err)
	}
	return func() { unix.Chown(tty, int(st.Uid), -1) }, nil
}

// searchable checks that every folder from dir up lets others through
// (o+x): the firmware's root in its user namespace, an unprivileged uid
// of the host, must reach its union in the state folder.
func searchable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := abs; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is mode %v: the firmware's root in its user namespace (an unprivileged uid of the host) cannot reach the state folder under it; chmod o+x %s, pick another --state, or run with --userns=false", p, fi.Mode().Perm(), p)
		}
		if p == "/" {
			return nil
		}
	}
}

// usernsNote says who the firmware's root is on the host.
func usernsNote(m *sandbox.IDMap) string {
	if m == nil {
		return "no user namespace: the firmware's root is the host's root (held by seccomp and dropped capabilities)"
	}
	return fmt.Sprintf("user namespace: root inside is uid %d on the host (range %d-%d)", m.Host, m.Host, m.Host+m.Count-1)
}

// limitsNote says what the instance may use.
func limitsNote(memory, pids, layer int64, cg *sandbox.Cgroup) string {
	mem, pid := "memory unlimited", "processes unlimited"
	if memory > 0 {
		mem = "memory " + units.Bytes(memory)
	}
	if pids > 0 {
		pid = fmt.Sprintf("at most %d processes", pids)
	}
	where := ""
	if cg != nil {
		v := "cgroup v1 "
		if cg.V2 {
			v = "cgroup v2 "
		}
		where = " (" + v + strings.Join(cg.Dirs, ", ") + ")"
	}
	return fmt.Sprintf("%s, %s%s; layer %s", mem, pid, where, units.Bytes(layer))
}

// stopGrace is how long the firmware's init has to end after SIGTERM.
const stopGrace = 10 * time.Second

// claimInstance finds or makes the instance and takes its run lock.
func claimInstance(db store.Store, name, fw, kind, hash string, stderr io.Writer) (*store.Instance, *os.File, error) {
	if name == "" {
		// A new instance: the first free of HASH8, HASH8-2, ...
		for n := 1; ; n++ {
			name = hash[:8]
			if n > 1 {
				name = fmt.Sprintf("%s-%d", hash[:8], n)
			}
			if _, err := db.Load(name); errors.Is(err, store.ErrNoInstance) {
				break
			}
		}
	}
	lock, err := db.Lock(name)
	if errors.Is(err, unix.EWOULDBLOCK) {
		i, _ := db.Load(name)
		pid := 0
		if i != nil {
			pid = i.PID
		}
		return nil, nil, fmt.Errorf("instance %s is running already (runner pid %d); pick another --name", name, pid)
	}
	if err != nil {
		return nil, nil, err
	}
	inst, err := db.Load(name)
	switch {
	case errors.Is(err, store.ErrNoInstance):
		inst = &store.Instance{Name: name, Firmware: fw, Kind: kind, Hash: hash}
	case err != nil:
		lock.Close()
		return nil, nil, err
	default:
		if inst.Firmware != fw {
			lock.Close()
			return nil, nil, fmt.Errorf("instance %s belongs to firmware %s, not %s; drop it or pick another --name", name, inst.Firmware, fw)
		}
		if inst.Hash != hash {
			fmt.Fprintf(stderr, "sandbox: note: %s changed since instance %s was made (sha256 %.12s, now %.12s); its layer stays on top\n", fw, name, inst.Hash, hash)
			inst.Hash, inst.Kind = hash, kind
		}
	}
	return inst, lock, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// fileFor returns w as a file for the firmware: w itself when it is one,
// else a pipe copied into w (done waits for the copy).
func fileFor(w io.Writer) (*os.File, func(), error) {
	if f, ok := w.(*os.File); ok {
		// A duplicate, so closing it leaves w open.
		fd, err := unix.Dup(int(f.Fd()))
		if err != nil {
			return nil, nil, err
		}
		unix.CloseOnExec(fd)
		return os.NewFile(uintptr(fd), f.Name()), func() {}, nil
	}
	r, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { io.Copy(w, r); r.Close(); wg.Done() }()
	return pw, wg.Wait, nil
}

func sandboxList(args []string, stdout, stderr io.Writer) error {
	fs := program.FlagSet("sandbox", "list [--state DIR]", stderr)
	state := fs.String("state", store.DefaultStateDir, "state folder")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: sandbox list takes no arguments", errUsage)
	}
	db := store.Store{Dir: *state}
	list, err := db.List()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tSHA256\tKIND\tFIRMWARE")
	for _, i := range list {
		st := "stopped"
		if db.Running(i.Name) {
			st = fmt.Sprintf("running (pid %d)", i.PID)
		} else if i.LastEnding != "" {
			st = "stopped: " + i.LastEnding
		}
		fmt.Fprintf(tw, "%s\t%s\t%.12s\t%s\t%s\n", i.Name, st, i.Hash, i.Kind, i.Firmware)
	}
	return tw.Flush()
}

func sandboxStop(args []string, stdout, stderr io.Writer) error {
	var now *bool
	db, name, err := oneName("stop", args, stderr, func(fs *flag.FlagSet) {
		now = fs.Bool("now", false, "kill the firmware at once (SIGKILL) instead of SIGTERM first")
	})
	if err != nil {
		return err
	}
	if err := needRoot(); err != nil {
		return err
	}
	inst, err := db.Load(name)
	if err != nil {
		return err
	}
	if !db.Running(name) || inst.PID == 0 {
		return fmt.Errorf("%s is not running", name)
	}
	sig := unix.SIGTERM
	if *now {
		sig = unix.SIGUSR1
	}
	if err := unix.Kill(inst.PID, sig); err != nil {
		return fmt.Errorf("signalling the runner of %s (pid %d): %w", name, inst.PID, err)
	}
	// The runner unmounts and lets go of the lock when the firmware
	// has ended.
	deadline := time.Now().Add(stopGrace + 5*time.Second)
	for db.Running(name) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still runs (runner pid %d); try ofsroot sandbox stop --now %s", name, inst.PID, name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintf(stdout, "%s stopped\n", name)
	return nil
}

func sandboxDrop(args []string, stdout, stderr io.Writer) error {
	db, name, err := oneName("drop", args, stderr, nil)
	if err != nil {
		return err
	}
	if err := needRoot(); err != nil {
		return err
	}
	if err := db.Drop(name); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s dropped\n", name)
	return nil
}

func sandboxDiff(args []string, stdout, stderr io.Writer) error {
	var asJSON *bool
	db, name, err := oneName("diff", args, stderr, func(fs *flag.FlagSet) {
		asJSON = fs.Bool("json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	if err := needRoot(); err != nil {
		return err
	}
	changes, err := db.Diff(name, overlaydiff.Options{})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if changes == nil {
			changes = []overlaydiff.Change{}
		}
		return enc.Encode(changes)
	}
	for _, c := range changes {
		fmt.Fprintln(stdout, c)
	}
	return nil
}

func sandboxRemount(args []string, stdout, stderr io.Writer) error {
	db, name, err := oneName("remount", args, stderr, nil)
	if err != nil {
		return err
	}
	if err := needRoot(); err != nil {
		return err
	}
	if err := db.Remount(name); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: the overlay was remounted; it now shows the firmware folder as it is\n", name)
	return nil
}
