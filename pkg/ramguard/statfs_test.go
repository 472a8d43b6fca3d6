package ramguard

import "github.com/ofsroot/ofsroot/pkg/rootstatus"

func statfsFull(string) (rootstatus.Statfs, error) {
	return rootstatus.Statfs{Bsize: 4096, Blocks: 100, Bfree: 1, Bavail: 1, Files: 100, Ffree: 90}, nil
}
