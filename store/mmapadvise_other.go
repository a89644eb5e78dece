//go:build !linux

package store

import (
	"errors"

	bolt "go.etcd.io/bbolt"
)

// mappedSupported reports whether mappedLoop can work here.
const mappedSupported = false

// mappedResident is not implemented outside Linux: mappedLoop stops.
func mappedResident() (int64, error) {
	return 0, errors.New("file-backed resident memory is read from /proc/self/statm (Linux only)")
}

// dropMapped is not implemented outside Linux.
func dropMapped(*bolt.DB) (int64, error) { return 0, nil }
