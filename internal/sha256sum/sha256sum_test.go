package sha256sum

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

// Every length around the block and padding edges, split anywhere, and
// a long input: the same digest as crypto/sha256.
func TestSumMatchesCryptoSHA256(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 1<<16+77)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	lengths := []int{len(data)}
	for n := 0; n <= 300; n++ {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		want := sha256.Sum256(data[:n])
		cut := 0
		if n > 0 {
			cut = r.IntN(n + 1)
		}
		if got := Sum(data[:cut], data[cut:n]); got != want {
			t.Fatalf("length %d (split at %d): %x, want %x", n, cut, got, want)
		}
		if got := Sum(data[:n]); got != want {
			t.Fatalf("length %d: %x, want %x", n, got, want)
		}
	}
	// The FIPS 180-2 example, "abc".
	if got := Sum([]byte("abc")); !bytes.Equal(got[:2], []byte{0xba, 0x78}) {
		t.Errorf("abc: %x", got)
	}
}
