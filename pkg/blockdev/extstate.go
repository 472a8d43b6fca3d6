package blockdev

import "io"

// ExtState is what an ext2/3/4 superblock says about the state the
// filesystem was left in: what a read-only mount of a write-protected
// device has to know before it mounts.
type ExtState struct {
	// NeedsRecovery: the journal holds changes not yet written to the
	// filesystem (the incompat flag needs_recovery, left by an unclean
	// unmount). Replaying them writes the device; on a write-protected
	// device the kernel refuses to mount unless told not to replay
	// (mount option noload).
	NeedsRecovery bool
	// HasErrors: the kernel found damage earlier and marked the
	// filesystem (s_state has EXT4_ERROR_FS); ErrorCount is how many
	// errors it recorded (s_error_count).
	HasErrors  bool
	ErrorCount uint32
	// Orphans: the orphan list is not empty (files deleted while open
	// at an unclean shutdown); the kernel frees them at a writable mount.
	Orphans bool
	// ErrorsPanic: the superblock's default reaction to an error is a
	// kernel panic (s_errors = 3, tune2fs -e panic).
	ErrorsPanic bool
}

const (
	extStateError       = 0x0002 // EXT2_ERROR_FS in s_state
	extStateOrphan      = 0x0004 // EXT3_ORPHAN_FS in s_state
	extSuperErrorCount  = 0x194  // s_error_count
	extSuperLastOrphan  = 0xE8   // s_last_orphan
	extSuperReadLength  = 0x198
	extSuperStateOffset = 58
	extSuperErrors      = 60 // s_errors: 1 continue, 2 remount-ro, 3 panic
	extErrorsPanic      = 3
)

// ReadExtState reads the ext superblock of r. ok is false when r holds
// no ext filesystem (or is too short to tell).
func ReadExtState(r io.ReaderAt) (st ExtState, ok bool, err error) {
	sb, err := readAt(r, extSuperOffset, extSuperReadLength)
	if err != nil {
		if isShort(err) {
			return ExtState{}, false, nil
		}
		return ExtState{}, false, err
	}
	if le16(sb[56:]) != 0xEF53 {
		return ExtState{}, false, nil
	}
	state := le16(sb[extSuperStateOffset:])
	st.NeedsRecovery = le32(sb[96:])&extIncompatRecover != 0
	st.HasErrors = state&extStateError != 0
	st.ErrorCount = le32(sb[extSuperErrorCount:])
	st.Orphans = state&extStateOrphan != 0 || le32(sb[extSuperLastOrphan:]) != 0
	st.ErrorsPanic = le16(sb[extSuperErrors:]) == extErrorsPanic
	return st, true, nil
}
