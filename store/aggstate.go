package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The aggregator's state at a clean stop (FORMAT.md, "Aggregator state
// file"). After a crash the aggregator's pairing state is rebuilt by
// replaying the chunks of about two pair waits (replayAggregator), seconds
// at a high rate, during which flow-graph and latency queries wait. A
// clean Close saves the state instead, right after its last rollup flush,
// and the next start loads it in a fraction of that time. The file is
// bound to the aggregation checkpoint of that flush (the meta keys
// keyAggApplied, keyAggExpired and keyAggReplay): a file that does not
// match the store's checkpoint, or whose checksum fails, is ignored and
// the chunks are replayed as after a crash. It is removed before the
// loaded aggregator applies anything, so that it is never loaded twice.

// AggStateFileName is the name of the aggregator state file in the data
// directory.
const AggStateFileName = "aggregator.state"

// aggStateMagic starts the file; the last byte is the format version.
var aggStateMagic = [8]byte{'F', 'S', 'A', 'G', 'F', 'I', 'L', 1}

// aggStateHeader is magic, applied, expired, replay from, CRC-32C of the
// body.
const aggStateHeader = 8 + 8 + 8 + 8 + 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// aggBinding is the aggregation checkpoint a state file belongs to.
type aggBinding struct {
	applied, replayFrom uint64
	expired             int64
}

func (db *DB) aggStatePath() string { return filepath.Join(filepath.Dir(db.path), AggStateFileName) }

// saveAggState writes the aggregator's state beside the bbolt file, bound
// to the aggregation checkpoint just flushed: to a temporary file, synced,
// renamed over the old one and the directory synced. Close calls it after
// its last flushRollups; a failure only costs the next start a replay.
func (db *DB) saveAggState() error {
	start := time.Now()
	var bind aggBinding
	err := db.bolt.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		bind = aggBinding{applied: getU64(meta, keyAggApplied), replayFrom: max(getU64(meta, keyAggReplay), 1),
			expired: int64(getU64(meta, keyAggExpired))}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the aggregation checkpoint: %w", err)
	}
	buf := make([]byte, aggStateHeader, aggStateHeader+1<<20)
	buf, err = db.agg.AppendState(buf)
	if err != nil {
		return err
	}
	copy(buf, aggStateMagic[:])
	binary.LittleEndian.PutUint64(buf[8:], bind.applied)
	binary.LittleEndian.PutUint64(buf[16:], uint64(bind.expired))
	binary.LittleEndian.PutUint64(buf[24:], bind.replayFrom)
	binary.LittleEndian.PutUint32(buf[32:], crc32.Checksum(buf[aggStateHeader:], castagnoli))
	path := db.aggStatePath()
	if err := writeFileSynced(path, buf); err != nil {
		return err
	}
	db.logger.Info("saved the aggregator's state", "bytes", len(buf), "applied_chunk", bind.applied,
		"duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// writeFileSynced writes b to path durably: a temporary file synced, then
// renamed, then the directory synced.
func writeFileSynced(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// loadAggState loads the state file into the new aggregator if it belongs
// to the replay plan's checkpoint, removing it first; it reports whether
// it did. Any other outcome (no file, another checkpoint's, damaged, made
// with other aggregation options, not removable) is logged and leaves the
// aggregator as it was, to be rebuilt by the replay.
func (db *DB) loadAggState(p *replayPlan) bool {
	start := time.Now()
	path := db.aggStatePath()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		db.logger.Warn("cannot read the aggregator's state; replaying the chunks instead", "err", err)
		return false
	}
	// Whatever follows, the file is used at most once.
	if err := os.Remove(path); err != nil {
		db.logger.Warn("cannot remove the aggregator's state file, so not using it; replaying the chunks instead", "err", err)
		return false
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		db.logger.Warn("aggregator state: replaying the chunks instead", "err", err)
		return false
	}
	bind, body, err := parseAggState(b)
	if err == nil && (bind != aggBinding{applied: p.applied, replayFrom: p.from, expired: p.expired}) {
		err = fmt.Errorf("saved for aggregation checkpoint %+v, the store's is %+v (not stopped cleanly after it was saved)",
			bind, aggBinding{applied: p.applied, replayFrom: p.from, expired: p.expired})
	}
	if err == nil {
		err = db.agg.LoadState(body)
	}
	if err != nil {
		db.logger.Warn("not using the aggregator's state file; replaying the chunks instead", "path", path, "err", err)
		return false
	}
	db.logger.Info("loaded the aggregator's state", "bytes", len(b), "applied_chunk", p.applied,
		"duration", time.Since(start).Round(time.Millisecond))
	return true
}

// parseAggState checks a state file's header and checksum.
func parseAggState(b []byte) (aggBinding, []byte, error) {
	if len(b) < aggStateHeader {
		return aggBinding{}, nil, fmt.Errorf("aggregator state file: %d bytes, shorter than its header", len(b))
	}
	if string(b[:8]) != string(aggStateMagic[:]) {
		return aggBinding{}, nil, fmt.Errorf("aggregator state file: bad magic %q", b[:8])
	}
	bind := aggBinding{applied: binary.LittleEndian.Uint64(b[8:]), expired: int64(binary.LittleEndian.Uint64(b[16:])),
		replayFrom: binary.LittleEndian.Uint64(b[24:])}
	body := b[aggStateHeader:]
	if want, got := binary.LittleEndian.Uint32(b[32:]), crc32.Checksum(body, castagnoli); got != want {
		return aggBinding{}, nil, fmt.Errorf("aggregator state file: checksum %08x, want %08x (damaged)", got, want)
	}
	return bind, body, nil
}
