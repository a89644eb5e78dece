package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketImports holds the progress records of file imports (see
// WithImportMark).
var bucketImports = []byte("imports")

// maxImportMarkKey bounds the key of an import mark (bbolt allows 32 KiB).
const maxImportMarkKey = 1024

type importMarkKey struct{}

// importMark is a record put in the imports bucket in the same transaction
// as the write that carries it.
type importMark struct {
	key, value []byte
}

// WithImportMark returns a context that makes the next WriteTraces or
// WriteMetrics called with it also store value under key in the imports
// bucket, in the same bbolt transaction as the data. An importer records
// its progress this way: after a crash the mark and the data it describes
// are either both durable or both absent, so a resumed import neither
// skips nor repeats anything. key must be at most 1 KiB.
func WithImportMark(ctx context.Context, key, value []byte) context.Context {
	return context.WithValue(ctx, importMarkKey{}, &importMark{key: key, value: value})
}

func importMarkFrom(ctx context.Context) (*importMark, error) {
	m, _ := ctx.Value(importMarkKey{}).(*importMark)
	if m != nil && (len(m.key) == 0 || len(m.key) > maxImportMarkKey) {
		return nil, fmt.Errorf("import mark key must be 1 to %d bytes, got %d", maxImportMarkKey, len(m.key))
	}
	return m, nil
}

// ImportMark returns the value last stored under key with WithImportMark,
// or nil when there is none.
func (db *DB) ImportMark(key []byte) ([]byte, error) {
	var out []byte
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketImports); b != nil {
			if v := b.Get(key); v != nil {
				out = append([]byte(nil), v...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read import mark: %w", err)
	}
	return out, nil
}

// DeleteImportMark removes the mark under key (to import a file again
// from its start).
func (db *DB) DeleteImportMark(key []byte) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketImports).Delete(key)
	})
	if err != nil {
		return fmt.Errorf("delete import mark: %w", err)
	}
	return nil
}
