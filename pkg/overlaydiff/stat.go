package overlaydiff

import (
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

func toUnixStat(fi fs.FileInfo) *unix.Stat_t {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &unix.Stat_t{}
	}
	return &unix.Stat_t{Dev: st.Dev, Ino: st.Ino, Mode: st.Mode, Uid: st.Uid, Gid: st.Gid, Rdev: st.Rdev, Size: st.Size, Nlink: st.Nlink}
}
