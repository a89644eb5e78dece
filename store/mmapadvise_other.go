//go:build !linux

package store

import "errors"

// mappedResident is not implemented outside Linux: mappedLoop stops.
func mappedResident() (int64, error) {
	return 0, errors.New("file-backed resident memory is read from /proc/self/statm (Linux only)")
}

// dropMapped is not implemented outside Linux.
func dropMapped(*DB) (int64, error) { return 0, nil }
