package bootinit

import (
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/cmdline"
)

const policyFstab = `# test
UUID=1 / ext4 defaults 0 1
/dev/vdb1 none swap sw 0 0
LABEL=boot /boot ext4 defaults 0 2
LABEL=efi /boot/efi vfat umask=077 0 1
LABEL=data /data ext4 defaults,nofail 0 2
LABEL=log /var/log ext4 defaults 0 2
LABEL=var /var ext4 defaults 0 2
tmpfs /tmp tmpfs size=10% 0 0
/srv/x /mnt/bind none bind 0 0
LABEL=spare /spare ext4 noauto 0 0
server:/export /net nfs defaults 0 0
LABEL=old /mnt/root-RO ext4 defaults 0 0
`

func TestPlanMounts(t *testing.T) {
	P, R, K := cmdline.MountProtect, cmdline.MountRO, cmdline.MountKeep
	rules := func(s string) []cmdline.MountRule { r, _ := cmdline.ParseMountRules(s); return r }
	type want struct{ result, from string }
	for _, tc := range []struct {
		name      string
		cmd, conf []cmdline.MountRule
		recurse   bool
		want      map[string]want
		warns     []string
	}{
		{name: "nothing asked: all kept", want: map[string]want{"/boot": {"kept", "default"}, "/data": {"kept", "default"}, "/tmp": {"kept", "default"}}},
		{name: "command line over file",
			cmd:   rules("/boot:protect,/data:keep,/srv:ro"),
			conf:  rules("/data:protect /var/log:ro /boot:keep"),
			want:  map[string]want{"/boot": {"protected", "ofs-mounts="}, "/data": {"kept", "ofs-mounts="}, "/var/log": {"read-only", "ofsroot.conf"}, "/var": {"kept", "default"}},
			warns: []string{"ofs-mounts= asks ro for /srv, which is not a mount"}},
		{name: "protect under a kept mount becomes ro",
			cmd:   []cmdline.MountRule{{Mount: "/var/log", Policy: P}},
			want:  map[string]want{"/var/log": {"read-only", "ofs-mounts="}, "/var": {"kept", "default"}},
			warns: []string{"/var/log: not protected: it is under /var"}},
		{name: "protect under a protected mount",
			cmd:  []cmdline.MountRule{{Mount: "/var/log", Policy: P}, {Mount: "/var", Policy: P}},
			want: map[string]want{"/var/log": {"protected", "ofs-mounts="}, "/var": {"protected", "ofs-mounts="}}},
		{name: "protect of virtual, bind and network mounts is refused",
			cmd:   rules("/tmp:protect,/mnt/bind:protect,/net:protect"),
			want:  map[string]want{"/tmp": {"kept", "ofs-mounts="}, "/mnt/bind": {"kept", "ofs-mounts="}, "/net": {"kept", "ofs-mounts="}},
			warns: []string{"/tmp: not protected", "/mnt/bind: not protected", "/net: not protected"}},
		{name: "noauto protect is ro", cmd: rules("/spare:protect"), want: map[string]want{"/spare": {"read-only", "ofs-mounts="}}},
		{name: "overlayroot recurse: block mounts but vfat",
			recurse: true, conf: rules("/var/log:ro"),
			want: map[string]want{"/boot": {"protected", "overlayroot=tmpfs"}, "/boot/efi": {"kept", "default"}, "/data": {"protected", "overlayroot=tmpfs"}, "/var": {"protected", "overlayroot=tmpfs"}, "/var/log": {"read-only", "ofsroot.conf"}, "/tmp": {"kept", "default"}, "/net": {"kept", "default"}}},
		{name: "rules for the layers are ignored", cmd: rules("/mnt/root-RO:protect"), warns: []string{"/mnt/root-RO, which is not a mount"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plans, warns := planMounts([]byte(policyFstab), tc.cmd, tc.conf, tc.recurse, "overlayroot=tmpfs", "/mnt/root-RO", "/mnt/root-RW")
			got := map[string]*mountPlan{}
			for i, p := range plans {
				got[p.entry.File] = p
				if p.protect != (p.status.Result == "protected") || p.protect && p.policy != P {
					t.Errorf("%s: protect %v with %+v", p.entry.File, p.protect, p.status)
				}
				// Parents before children.
				for _, q := range plans[i+1:] {
					if under(p.entry.File, q.entry.File) {
						t.Errorf("%s planned before its parent %s", p.entry.File, q.entry.File)
					}
				}
			}
			for _, m := range []string{"/", "none", "/mnt/root-RO"} {
				if got[m] != nil {
					t.Errorf("%s planned", m)
				}
			}
			for m, w := range tc.want {
				p := got[m]
				if p == nil {
					t.Errorf("%s not planned", m)
					continue
				}
				if p.status.Result != w.result || p.status.From != w.from {
					t.Errorf("%s: %+v, want result %q from %q", m, p.status, w.result, w.from)
				}
				if (p.policy == R) != (w.result == "read-only") || (p.policy == K) != (w.result == "kept") {
					t.Errorf("%s: policy %v for result %q", m, p.policy, w.result)
				}
			}
			if len(warns) != len(tc.warns) {
				t.Errorf("warnings %q, want %d like %q", warns, len(tc.warns), tc.warns)
			}
			for i := range tc.warns {
				if i < len(warns) && !strings.Contains(warns[i], tc.warns[i]) {
					t.Errorf("warning %q lacks %q", warns[i], tc.warns[i])
				}
			}
		})
	}
}

func TestMountPlanFstabLines(t *testing.T) {
	plans, _ := planMounts([]byte(policyFstab), []cmdline.MountRule{{Mount: "/boot", Policy: cmdline.MountProtect}, {Mount: "/var/log", Policy: cmdline.MountRO}}, nil, false, "")
	b := &boot{mountPlans: plans}
	b.log, _ = testLogger()
	for _, p := range plans {
		if p.entry.File == "/boot" {
			p.status.Device, p.status.Lower, p.status.Upper = "/dev/vdc1", "/run/ofsroot/mounts/boot", "/mnt/root-RW/mounts/boot/upper"
		}
	}
	out := string(b.applyMountPolicy([]byte(policyFstab)))
	for _, s := range []string{
		"\n# ofsroot: /boot is protected (protect from ofs-mounts=): the initramfs mounted it as an overlay with\n# its upper in RAM (/mnt/root-RW/mounts/boot/upper) over /dev/vdc1, write-protected and read-only at /run/ofsroot/mounts/boot.\n",
		"\n# LABEL=boot /boot ext4 defaults 0 2\n",
		"\n# ofsroot: /var/log made read-only (ro from ofs-mounts=). Was: LABEL=log /var/log ext4 defaults 0 2\nLABEL=log /var/log ext4 ro 0 0\n",
		"\nLABEL=data /data ext4 defaults,nofail 0 2\n",
		"\nLABEL=efi /boot/efi vfat umask=077 0 1\n",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("fstab lacks %q:\n%s", s, out)
		}
	}
	// No line mounts /boot any more.
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && !strings.HasPrefix(l, "#") && f[1] == "/boot" {
			t.Errorf("an active /boot line is left: %q", l)
		}
	}
	if len(b.status.Mounts) != len(plans) {
		t.Errorf("status mounts %v", b.status.Mounts)
	}
	// A protect that failed: read-only, never writable.
	for _, p := range plans {
		if p.entry.File == "/boot" {
			p.protect, p.status.Result = false, resultProtectFailed
		}
	}
	out = string(b.applyMountPolicy([]byte(policyFstab)))
	if !strings.Contains(out, "\nLABEL=boot /boot ext4 ro 0 0\n") {
		t.Errorf("failed protect not made read-only:\n%s", out)
	}
}

func TestMountOptions(t *testing.T) {
	if got := mountOptions("defaults,nofail,noatime,x-systemd.device-timeout=5,errors=remount-ro,noauto,comment=x,user"); got != "noatime,errors=remount-ro" {
		t.Errorf("mountOptions: %q", got)
	}
	taken := map[string]bool{}
	if a, b, c := mountDirName("/var/log", taken), mountDirName("/var-log", taken), mountDirName("/boot", taken); a != "var-log" || b != "var-log-2" || c != "boot" {
		t.Errorf("names %q %q %q", a, b, c)
	}
}
