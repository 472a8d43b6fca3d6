package sandbox

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultProfile is the AppArmor profile a sandbox is confined by.
const DefaultProfile = "ofsroot-sandbox"

// CompiledPolicyPath is where an initramfs carries the profile compiled
// on the build host (ofsroot initramfs --apparmor), for a boot that has no
// apparmor_parser: the init loads it through securityfs.
const CompiledPolicyPath = "/etc/ofsroot/apparmor/" + DefaultProfile + ".bin"

// FeaturesFile is the AppArmor feature set Debian's apparmor package
// ships, which kernels of Debian's releases accept; CompileProfile
// compiles against it rather than the build host's kernel.
var FeaturesFile = "/usr/share/apparmor-features/features"

// AppArmor paths, variables for tests.
var (
	securityFS      = "/sys/kernel/security"
	appArmorModule  = "/sys/module/apparmor"
	appArmorParser  = "apparmor_parser"
	procSelfAttrDir = "/proc/self/attr"
	compiledPolicy  = CompiledPolicyPath
)

// CompileProfile compiles Profile(name) with the build host's
// apparmor_parser against FeaturesFile, for an initramfs to carry.
func CompileProfile(name string) ([]byte, error) {
	parser := lookPath(appArmorParser)
	if parser == "" {
		return nil, fmt.Errorf("compiling the AppArmor profile needs %s (apt-get install apparmor)", appArmorParser)
	}
	if _, err := os.Stat(FeaturesFile); err != nil {
		return nil, fmt.Errorf("compiling the AppArmor profile needs the feature set %s (apt-get install apparmor): %w", FeaturesFile, err)
	}
	dir, err := os.MkdirTemp("", "ofsroot-apparmor-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, name+".bin")
	if msg, err := runWithInput(parser, []string{"-Q", "-M", FeaturesFile, "-o", out}, Profile(name)); err != nil {
		return nil, fmt.Errorf("%s -Q -M %s: %v: %s", parser, FeaturesFile, err, strings.TrimSpace(msg))
	}
	return os.ReadFile(out)
}

// Profile is the AppArmor profile text for name: everything a firmware
// may do inside its namespaces, minus what would reach the host even if
// a capability drop were missed (the same rules firmwared's profile
// has, plus capabilities). attach_disconnected: after pivot_root, paths
// are relative to a root the host does not see.
func Profile(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by ofsroot: the firmware sandbox's profile.\n")
	fmt.Fprintf(&b, "profile %s flags=(attach_disconnected,mediate_deleted) {\n", name)
	for _, r := range []string{"file", "network", "signal", "ptrace", "unix", "capability", "umount", "pivot_root"} {
		fmt.Fprintf(&b, "  %s,\n", r)
	}
	for _, c := range []string{"sys_time", "sys_module", "sys_rawio", "sys_boot", "mac_admin", "mac_override", "sys_admin", "mknod", "syslog", "wake_alarm"} {
		fmt.Fprintf(&b, "  deny capability %s,\n", c)
	}
	b.WriteString("  deny mount,\n")
	for _, p := range []string{"/proc/sysrq-trigger", "/proc/kcore", "/proc/kmsg", "/proc/sys/kernel/**", "/proc/sys/vm/**", "/sys/firmware/**", "/sys/kernel/security/**", "/dev/mem", "/dev/kmem", "/dev/port"} {
		fmt.Fprintf(&b, "  deny %s wklx,\n", p)
	}
	b.WriteString("}\n")
	return b.String()
}

// AppArmorPlan is what PrepareAppArmor decided.
type AppArmorPlan struct {
	// Label is the profile to exec the firmware under; "" for none.
	Label string
	// Note says what was done or why it was skipped, for the log.
	Note string
}

// PrepareAppArmor makes profile name usable for the next sandbox: where
// the kernel has AppArmor (securityfs/apparmor; securityfs is mounted
// when the apparmor module is present but it is not), a profile already
// loaded under that name is used, else Profile(name) is loaded with
// apparmor_parser -r when it is installed. Otherwise Label is "" and Note
// says why it was skipped. Side effects: may mount securityfs and load a
// profile into the kernel.
func PrepareAppArmor(name string) AppArmorPlan {
	if name == "" {
		name = DefaultProfile
	}
	aa := filepath.Join(securityFS, "apparmor")
	if _, err := os.Stat(aa); err != nil {
		if _, merr := os.Stat(appArmorModule); merr != nil {
			return AppArmorPlan{Note: "AppArmor skipped: this kernel has no AppArmor (no " + appArmorModule + ")"}
		}
		if err := unix.Mount("securityfs", securityFS, "securityfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil && err != unix.EBUSY {
			return AppArmorPlan{Note: fmt.Sprintf("AppArmor skipped: mounting securityfs on %s: %v", securityFS, err)}
		}
		if _, err := os.Stat(aa); err != nil {
			return AppArmorPlan{Note: "AppArmor skipped: the kernel has AppArmor built but not enabled (no " + aa + "; boot with apparmor=1 security=apparmor)"}
		}
	}
	if loaded, _ := profileLoaded(filepath.Join(aa, "profiles"), name); loaded {
		return AppArmorPlan{Label: name, Note: "AppArmor: using the loaded profile " + name}
	}
	if policy, err := os.ReadFile(compiledPolicy); err == nil {
		if err := os.WriteFile(filepath.Join(aa, ".replace"), policy, 0); err != nil {
			return AppArmorPlan{Note: fmt.Sprintf("AppArmor skipped: loading the compiled profile %s: %v", compiledPolicy, err)}
		}
		if loaded, _ := profileLoaded(filepath.Join(aa, "profiles"), name); !loaded {
			return AppArmorPlan{Note: fmt.Sprintf("AppArmor skipped: the compiled profile %s loaded, but no profile %q appeared", compiledPolicy, name)}
		}
		return AppArmorPlan{Label: name, Note: "AppArmor: loaded the compiled profile " + name + " from " + compiledPolicy}
	}
	parser := lookPath(appArmorParser)
	if parser == "" {
		return AppArmorPlan{Note: fmt.Sprintf("AppArmor skipped: no profile %q is loaded and %s is not installed (apt-get install apparmor, or load the profile `ofsroot sandbox profile` prints)", name, appArmorParser)}
	}
	if out, err := runWithInput(parser, []string{"-r", "-K"}, Profile(name)); err != nil {
		return AppArmorPlan{Note: fmt.Sprintf("AppArmor skipped: %s -r failed: %v: %s", parser, err, strings.TrimSpace(out))}
	}
	return AppArmorPlan{Label: name, Note: "AppArmor: loaded profile " + name + " with " + parser}
}

// profileLoaded says whether the securityfs profiles list has name
// ("name (enforce)" lines).
func profileLoaded(list, name string) (bool, error) {
	f, err := os.Open(list)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if n, _, _ := strings.Cut(sc.Text(), " ("); n == name {
			return true, nil
		}
	}
	return false, sc.Err()
}

// setExecLabel asks AppArmor to confine the next exec by profile: the
// interface of aa_change_onexec(3), without libapparmor.
func setExecLabel(profile string) error {
	data := []byte("exec " + profile)
	err := os.WriteFile(filepath.Join(procSelfAttrDir, "apparmor/exec"), data, 0)
	if err == nil {
		return nil
	}
	// Kernels before 5.8 have only the shared attr file.
	if err2 := os.WriteFile(filepath.Join(procSelfAttrDir, "exec"), data, 0); err2 == nil {
		return nil
	}
	return err
}

// lookPath finds an executable in $PATH (or the sbin and bin folders).
func lookPath(name string) string {
	if strings.Contains(name, "/") {
		return name
	}
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	for _, d := range filepath.SplitList(path) {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// runWithInput runs prog with input on its standard input and returns
// what it printed (os.StartProcess: see Start).
func runWithInput(prog string, args []string, input string) (string, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return "", err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return "", err
	}
	p, err := os.StartProcess(prog, append([]string{prog}, args...), &os.ProcAttr{Files: []*os.File{inR, outW, outW}})
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return "", err
	}
	go func() { io.WriteString(inW, input); inW.Close() }()
	out, _ := io.ReadAll(outR)
	outR.Close()
	st, err := p.Wait()
	if err == nil && !st.Success() {
		err = fmt.Errorf("%s", st)
	}
	return string(out), err
}
