package units

import "testing"

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 95931580: "91.5 MiB", 1 << 30: "1.0 GiB", 3 << 30: "3.0 GiB", 16 << 30: "16.0 GiB", 5 << 40: "5.0 TiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
	if got := Bytes(uint64(2048)); got != "2.0 KiB" {
		t.Errorf("uint64: %q", got)
	}
}
