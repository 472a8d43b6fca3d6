package kmod

import "github.com/ofsroot/ofsroot/pkg/kmod/compressed"

// The tests read compressed modules as the builder does.
func init() { SetDecompressors(compressed.Decompressors) }
