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

// runOptions are sandbox run's flags, parsed and checked.
type runOptions struct {
	firmware  string // as given
	fwArgs    []string
	name      string
	state     string
	net       sandbox.Net
	init      string // "" finds it
	restarts  sandbox.Restarts
	hostname  string // "" is the instance name
	memory    int64
	pids      int64
	layerSize int64
	userns    bool
}

// sandboxRun runs a firmware's init in a sandbox until it ends for good:
// parse, claim and mount the instance, set the sandbox up, supervise.
func sandboxRun(args []string, stdout, stderr io.Writer) error {
	o, err := parseRunFlags(args, stderr)
	if err != nil {
		return err
	}
	if err := needRoot(); err != nil {
		return err
	}
	fw, err := filepath.Abs(o.firmware)
	if err != nil {
		return err
	}
	db := store.Store{Dir: o.state}
	inst, hash, kind, release, err := prepareInstance(db, o, fw, stderr)
	if err != nil {
		return err
	}
	defer release()
	cfg, undo, err := sandboxConfig(db, inst, o, fw, stderr)
	defer undo()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "sandbox: %s: running %s of %s (sha256 %.12s, %s) in %s; network %s; %s; %s\n", inst.Name, cfg.Init, fw, hash, kind, cfg.Root, cfg.Net, limitsNote(o.memory, o.pids, inst.LayerSize, cfg.Cgroup), usernsNote(cfg.UserNS))
	endings, err := superviseFirmware(cfg, o.restarts, stdout, stderr)
	if err != nil {
		return err
	}
	last := endings[len(endings)-1]
	inst.LastEnding = last.String() // saved by release
	return endingError(last)
}

// parseRunFlags reads sandbox run's arguments: FIRMWARE, the flags
// (before or after it) and, after "--", the firmware init's arguments.
// It checks every value and touches nothing.
func parseRunFlags(args []string, stderr io.Writer) (runOptions, error) {
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
		return runOptions{}, err
	}
	o := runOptions{fwArgs: fwArgs, name: *name, state: *state, init: *initPath, hostname: *hostname, pids: *pids, userns: *userns}
	o.memory, err = diskimage.ParseSize(*memFlag)
	if err != nil || o.memory < 0 {
		return o, fmt.Errorf("%w: --memory %q: want a size such as 512M or 2G, or 0", errUsage, *memFlag)
	}
	o.layerSize, err = diskimage.ParseSize(*layerFlag)
	if err != nil || o.layerSize < 8<<20 {
		return o, fmt.Errorf("%w: --layer-size %q: want a size of at least 8M, such as 256M or 2G", errUsage, *layerFlag)
	}
	if o.pids < 0 {
		return o, fmt.Errorf("%w: --pids %d: want a count, or 0", errUsage, o.pids)
	}
	if len(pos) != 1 {
		return o, fmt.Errorf("%w: sandbox run takes one FIRMWARE (a folder or an image)", errUsage)
	}
	o.firmware = pos[0]
	if o.net, err = sandbox.ParseNet(*netFlag); err != nil {
		return o, fmt.Errorf("%w: --net: %v", errUsage, err)
	}
	if o.restarts, err = sandbox.ParseRestarts(*restartFlag); err != nil {
		return o, fmt.Errorf("%w: --restart %v", errUsage, err)
	}
	if o.name != "" {
		if err := store.CheckName(o.name); err != nil {
			return o, fmt.Errorf("%w: --name: %v", errUsage, err)
		}
	}
	return o, nil
}

// prepareInstance claims the instance for firmware fw (a new one, or
// the stopped one o.name names), makes its layer and mounts its union.
// release unmounts it, saves the instance as stopped (with what the
// caller set in it meanwhile) and gives up the claim.
func prepareInstance(db store.Store, o runOptions, fw string, stderr io.Writer) (inst *store.Instance, hash, kind string, release func(), err error) {
	if o.userns {
		if err := searchable(filepath.Dir(db.Dir)); err != nil {
			return nil, "", "", nil, err
		}
	}
	cleaned, err := db.CleanStale()
	for _, n := range cleaned {
		fmt.Fprintf(stderr, "sandbox: unmounted what an earlier run of %s left mounted\n", n)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sandbox: warning: cleaning stale mounts: %v\n", err)
	}
	hash, kind, err = store.HashFirmware(fw)
	if err != nil {
		return nil, "", "", nil, fmt.Errorf("firmware %s: %w", fw, err)
	}
	inst, lock, err := claimInstance(db, o.name, fw, kind, hash, stderr)
	if err != nil {
		return nil, "", "", nil, err
	}
	inst.Net, inst.PID = o.net, os.Getpid()
	if err := db.Save(inst); err != nil {
		lock.Close()
		return nil, "", "", nil, err
	}
	release = func() {
		if err := db.Unmount(inst.Name); err != nil {
			fmt.Fprintf(stderr, "sandbox: warning: %v\n", err)
		}
		inst.PID = 0
		db.Save(inst)
		lock.Close()
	}
	if err := mountInstance(db, inst, o, fw); err != nil {
		release()
		return nil, "", "", nil, err
	}
	return inst, hash, kind, release, nil
}

// mountInstance makes the instance's layer (once), picks its uid range
// and mounts the firmware, the layer and the union of the two.
func mountInstance(db store.Store, inst *store.Instance, o runOptions, fw string) error {
	if err := db.MakeLayer(inst, o.layerSize); err != nil {
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
	if err := db.MountUnion(inst, o.userns); err != nil {
		return fmt.Errorf("mounting the instance's overlay: %w", err)
	}
	return nil
}

// sandboxConfig is what the sandbox runs for the mounted instance: the
// firmware's init, AppArmor, the cgroup of the limits, the user
// namespace, the terminal. undo (always set, also on an error) removes
// the cgroup and gives the terminal back.
func sandboxConfig(db store.Store, inst *store.Instance, o runOptions, fw string, stderr io.Writer) (cfg sandbox.Config, undo func(), err error) {
	var undos []func()
	undo = func() {
		for i := len(undos) - 1; i >= 0; i-- {
			undos[i]()
		}
	}
	union := db.Union(inst.Name)
	init := o.init
	if init == "" {
		if init, err = switchroot.FindInitIn(union, switchroot.DefaultInits); err != nil {
			return cfg, undo, fmt.Errorf("firmware %s has no init (%v); name it with --init", fw, err)
		}
	}
	hostname := o.hostname
	if hostname == "" {
		hostname = inst.Name
	}
	plan := sandbox.PrepareAppArmor(sandbox.DefaultProfile)
	fmt.Fprintf(stderr, "sandbox: %s\n", plan.Note)
	var cg *sandbox.Cgroup
	if o.memory > 0 || o.pids > 0 {
		cg, err = sandbox.NewCgroup(inst.Name, sandbox.Limits{Memory: o.memory, Pids: o.pids})
		if err != nil {
			return cfg, undo, fmt.Errorf("the instance's cgroup (for --memory and --pids): %w", err)
		}
		undos = append(undos, func() {
			if err := cg.Remove(); err != nil {
				fmt.Fprintf(stderr, "sandbox: warning: %v\n", err)
			}
		})
	}
	cfg = sandbox.Config{
		Root: union, Init: init, Args: o.fwArgs, Hostname: hostname, Net: o.net,
		Env:             []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/", "TERM=" + envOr("TERM", "linux")},
		AppArmorProfile: plan.Label,
		Cgroup:          cg,
	}
	if o.userns {
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
			undos = append(undos, restore)
		}
	}
	return cfg, undo, nil
}

// superviseFirmware starts the sandbox and restarts it as restarts says,
// passing SIGINT, SIGTERM and SIGHUP on to the firmware's init (SIGTERM,
// then SIGKILL after stopGrace) and SIGUSR1 as SIGKILL, each of which
// also ends the restarts. It returns how each run ended.
func superviseFirmware(cfg sandbox.Config, restarts sandbox.Restarts, stdout, stderr io.Writer) ([]sandbox.Ending, error) {
	out, copyDone, err := fileFor(stdout)
	if err != nil {
		return nil, err
	}
	errOut, errCopyDone, err := fileFor(stderr)
	if err != nil {
		out.Close()
		copyDone()
		return nil, err
	}
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
	return endings, nil
}

// endingError is sandbox run's result for how the firmware's last run
// ended: its exit code, 128+N for signal N, or the set-up's failure.
func endingError(last sandbox.Ending) error {
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
