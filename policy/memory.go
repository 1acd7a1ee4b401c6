package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// MinMemory is the smallest memory limit sstar accepts. The kernel counts
// the address space the Go runtime maps writable at start (about 120 MiB,
// most of it never touched; see harden.LimitMemory): below about 128 MiB
// sstar cannot even start, and a limit near that leaves a script nothing.
const MinMemory = 160 << 20

// sizeUnits are the binary units ParseSize accepts.
var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}}

// ParseSize reads a memory size: a whole number of bytes ("268435456"),
// or one with a binary unit ("256MiB", "2GiB"; KiB, MiB, GiB, TiB). It
// must be at least MinMemory.
func ParseSize(s string) (int64, error) {
	num, shift := s, uint(0)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, shift = strings.TrimSuffix(s, u.suffix), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)>>shift {
		return 0, fmt.Errorf("want a size in bytes or with a binary unit such as 256MiB or 2GiB, got %q", s)
	}
	n <<= shift
	if n < MinMemory {
		return 0, fmt.Errorf("a memory limit of %s is below the minimum of %s that sstar itself needs", FormatSize(n), FormatSize(MinMemory))
	}
	return n, nil
}

// FormatSize writes n bytes with the largest binary unit that divides it.
func FormatSize(n int64) string {
	for i := len(sizeUnits) - 1; i >= 0; i-- {
		u := sizeUnits[i]
		if n > 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// MemoryLimit resolves the memory limit of a run that asked for asked
// bytes (zero: nothing asked), as Limits does for steps: the default if
// nothing was asked, and asking above the maximum is an error naming it.
func (s *Settings) MemoryLimit(asked int64) (int64, error) {
	if asked == 0 {
		return s.Memory, nil
	}
	if s.MaxMemory != 0 && asked > s.MaxMemory {
		return 0, fmt.Errorf("--max-memory %s is above the maximum of %s set by the system policy", FormatSize(asked), FormatSize(s.MaxMemory))
	}
	return asked, nil
}
