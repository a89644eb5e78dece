package store

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// mappedSupported reports whether mappedLoop can work here.
const mappedSupported = true

// mappedResident returns the process's file-backed and shared resident
// memory in bytes: the third field of /proc/self/statm, in pages.
func mappedResident() (int64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, fmt.Errorf("read statm: %w", err)
	}
	f := bytes.Fields(b)
	if len(f) < 3 {
		return 0, fmt.Errorf("statm %q: want at least 3 fields", b)
	}
	pages, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("statm shared pages: %w", err)
	}
	return pages * int64(os.Getpagesize()), nil
}

// dropMapped advises MADV_DONTNEED on the part of the bbolt mapping that
// holds the file and returns its length. It runs inside a read transaction:
// bbolt only remaps (unmaps the old mapping) under its mmap lock, which a
// read transaction holds for reading, so the range is the live mapping for
// the whole call — never memory the Go heap could have reused.
func dropMapped(b *bolt.DB) (int64, error) {
	var n int64
	err := b.View(func(tx *bolt.Tx) error {
		base := b.Info().Data
		page := int64(os.Getpagesize())
		n = (tx.Size() + page - 1) / page * page
		if base == 0 || n == 0 {
			return nil
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, base, uintptr(n), syscall.MADV_DONTNEED); errno != 0 {
			return fmt.Errorf("madvise %d bytes: %w", n, errno)
		}
		return nil
	})
	return n, err
}
