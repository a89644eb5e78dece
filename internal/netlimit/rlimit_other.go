//go:build !unix

package netlimit

import "errors"

// FileLimit returns the limit of open files of the process; on this
// platform it is not known.
func FileLimit() (uint64, error) {
	return 0, errors.New("the limit of open files is not known on this platform")
}
