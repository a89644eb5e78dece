//go:build unix

package netlimit

import (
	"fmt"
	"syscall"
)

// FileLimit returns the soft limit of open files of the process
// (RLIMIT_NOFILE). The Go runtime raises it to the hard limit at start.
func FileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("get RLIMIT_NOFILE: %w", err)
	}
	return uint64(rl.Cur), nil
}
