package version

import "testing"

func TestFromBuildInfo(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", Devel},
		{"(devel)", Devel},
		{"v1.2.3", "v1.2.3"},
		{"v0.0.0-20250101120000-0123456789ab", Devel},
		{"v1.2.4-0.20250101120000-0123456789ab+dirty", Devel},
		{"v1.2.3+dirty", Devel},
		{"v1.2.4-pre.0.20250101120000-0123456789ab", Devel},
		{"v0.0.0-20250101120000-0123456789ab+dirty", Devel},
		{"v1.2.3-rc.1", "v1.2.3-rc.1"},
	} {
		if got := fromBuildInfo(tc.in); got != tc.want {
			t.Errorf("fromBuildInfo(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestGetStamped(t *testing.T) {
	old := Version
	defer func() { Version = old }()
	Version = "1.2.3"
	if got := Get(); got != "1.2.3" {
		t.Errorf("Get() = %q with Version stamped 1.2.3", got)
	}
	if got := LDFlag("1.2.3"); got != "-X "+Var+"=1.2.3" {
		t.Errorf("LDFlag = %q", got)
	}
	if LDFlag("") != "" {
		t.Error("LDFlag(\"\") stamps something")
	}
}
