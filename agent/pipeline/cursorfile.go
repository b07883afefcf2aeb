package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/sluicehq/sluice/internal/atomicfile"
)

// A sink's cursor file holds two slots, written in turn, each
//
//	[u32 magic][u32 crc32c(gen || next)][u64 gen][u64 next]
//
// little-endian. An update overwrites the older slot in place and
// fsyncs it, so a crash or a power loss mid-write spoils at most the slot
// being written: the other still holds the previous cursor. No rename is
// involved, so there is no directory entry to lose once the file exists
// (its creation is followed by an fsync of the directory).
const (
	cursorMagic    = 0x53435552 // "SCUR"
	cursorSlotSize = 24
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCursorDamaged means a cursor file exists but neither slot is valid:
// what a power loss can leave on some filesystems, or a damaged disk.
var errCursorDamaged = errors.New("cursor file damaged")

// cursorFile is one sink's saved cursor.
type cursorFile struct {
	f     *os.File
	gen   uint64
	fsync bool
}

// openCursorFile opens the cursor file at path. It returns the saved
// index and found=false when the file does not exist (a sink new to the
// buffer), and errCursorDamaged (with the file still usable for writing)
// when it exists but holds no valid slot.
func openCursorFile(path string, fsync bool) (cf *cursorFile, next uint64, found bool, err error) {
	_, statErr := os.Stat(path)
	existed := statErr == nil
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, 0, false, err
	}
	cf = &cursorFile{f: f, fsync: fsync}
	if !existed {
		if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, 0, false, err
		}
		return cf, 0, false, nil
	}
	buf := make([]byte, 2*cursorSlotSize)
	n, _ := f.ReadAt(buf, 0)
	valid := false
	for i := range 2 {
		if (i+1)*cursorSlotSize > n {
			break
		}
		gen, idx, ok := parseCursorSlot(buf[i*cursorSlotSize : (i+1)*cursorSlotSize])
		if ok && (!valid || gen > cf.gen) {
			cf.gen, next, valid = gen, idx, true
		}
	}
	if !valid {
		return cf, 0, true, fmt.Errorf("%w: %s (%d bytes, no valid slot)", errCursorDamaged, path, n)
	}
	return cf, next, true, nil
}

func parseCursorSlot(b []byte) (gen, next uint64, ok bool) {
	if binary.LittleEndian.Uint32(b[0:4]) != cursorMagic {
		return 0, 0, false
	}
	sum := binary.LittleEndian.Uint32(b[4:8])
	if crc32.Checksum(b[8:24], castagnoli) != sum {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint64(b[8:16]), binary.LittleEndian.Uint64(b[16:24]), true
}

// save writes next into the older slot.
func (cf *cursorFile) save(next uint64) error {
	cf.gen++
	var b [cursorSlotSize]byte
	binary.LittleEndian.PutUint32(b[0:4], cursorMagic)
	binary.LittleEndian.PutUint64(b[8:16], cf.gen)
	binary.LittleEndian.PutUint64(b[16:24], next)
	binary.LittleEndian.PutUint32(b[4:8], crc32.Checksum(b[8:24], castagnoli))
	if _, err := cf.f.WriteAt(b[:], int64(cf.gen%2)*cursorSlotSize); err != nil {
		return err
	}
	if cf.fsync {
		return cf.f.Sync()
	}
	return nil
}

func (cf *cursorFile) close() error { return cf.f.Close() }
