package version

import (
	"regexp"
	"testing"
)

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
		{"v0.0.0-20250101120000-0123456789ab-x", "v0.0.0-20250101120000-0123456789ab-x"},
		{"v0.0.0-2025010112000-0123456789ab", "v0.0.0-2025010112000-0123456789ab"},
		{"v0.0.0-20250101120000-0123456789AB", "v0.0.0-20250101120000-0123456789AB"},
		{"v0.0.0_20250101120000-0123456789ab", "v0.0.0_20250101120000-0123456789ab"},
		{"-20250101120000-0123456789ab", Devel},
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

// The hand-written matcher agrees with the pattern it replaced.
func TestIsPseudoVersionAsRegexp(t *testing.T) {
	re := regexp.MustCompile(`[-.]\d{14}-[0-9a-f]{12}(\+|$)`)
	base := "v1.2.4-0.20250101120000-0123456789ab+dirty"
	alphabet := "-.+0a9fgA"
	for i := range len(base) {
		for _, c := range []byte(alphabet) {
			for _, v := range []string{base[:i] + string(c) + base[i+1:], base[:i], base[i:], base[:i] + base[i+1:]} {
				if got, want := isPseudoVersion(v), re.MatchString(v); got != want {
					t.Errorf("isPseudoVersion(%q) = %v, the regexp says %v", v, got, want)
				}
			}
		}
	}
}
