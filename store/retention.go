package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// retentionBatch bounds the deletions of one transaction, so that retention
// never holds the single bbolt writer (and so ingest) for long.
const retentionBatch = 2000

func (db *DB) retentionLoop() {
	defer db.wg.Done()
	t := time.NewTicker(db.opts.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-db.closing:
			return
		case <-t.C:
		}
		if err := db.ApplyRetention(); err != nil {
			db.logger.Error("retention", "err", err)
		}
	}
}

// ApplyRetention deletes data older than Options.Retention now. It runs in
// the background every RetentionInterval; tests call it directly.
//
// A segment (with its span chunks, postings and trace-ID runs) is deleted
// when both its newest commit and its newest span end are older than the
// retention: imported data with old timestamps is kept for the retention
// period after it was imported. A span end counts at most MaxFutureSkew
// past its commit (ingest refuses later ones; data stored before that
// rule cannot hold a segment forever), and every expired segment is
// deleted, not only the oldest ones: one segment that must stay never
// keeps later expired segments. Metric chunks expire likewise by commit
// time and newest point time. Alert history events expire by their time,
// and beyond the newest MaxAlertEvents; active alert states never expire.
// Synthetic runs expire by their start time after
// Options.SyntheticRetention, and beyond the newest MaxSyntheticRuns.
func (db *DB) ApplyRetention() error {
	now := db.opts.Now()
	cutoff := now.Add(-db.opts.Retention).UnixNano()
	deletedSegs := 0
	for {
		db.catMu.RLock()
		var victim *segInfo
		for i := range db.segs {
			s := db.segs[i]
			if s.maxCommit >= cutoff {
				break // commits are in order: no later segment expired
			}
			if segmentExpired(s, cutoff) {
				victim = &s
				break
			}
		}
		db.catMu.RUnlock()
		if victim == nil {
			break
		}
		if err := db.deleteSegment(*victim); err != nil {
			return err
		}
		deletedSegs++
	}
	if deletedSegs > 0 {
		if err := db.deleteExpiredRunsAndTerms(); err != nil {
			return err
		}
		db.logger.Info("retention deleted segments", "segments", deletedSegs)
	}
	err := db.deleteExpiredMetricChunks(cutoff)
	if aerr := db.expireAlertEvents(cutoff); err == nil {
		err = aerr
	}
	if serr := db.expireSyntheticRuns(now.Add(-db.opts.SyntheticRetention).UnixNano()); err == nil {
		err = serr
	}
	return err
}

// segmentExpired reports whether segment s is older than cutoff.
func segmentExpired(s segInfo, cutoff int64) bool {
	return s.maxCommit < cutoff && min(s.maxEnd, s.maxCommit+int64(MaxFutureSkew)) < cutoff
}

// deleteSegment deletes a segment's chunks in batches, then its record.
func (db *DB) deleteSegment(s segInfo) error {
	for from := s.firstSeq; from <= s.lastSeq; {
		to := min(s.lastSeq, from+retentionBatch-1)
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketChunks)
			for q := from; q <= to; q++ {
				if err := b.Delete(u64(q)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("delete chunks %d-%d: %w", from, to, err)
		}
		db.m.retentionDeleted.WithLabelValues("span_chunks").Add(float64(to - from + 1))
		from = to + 1
	}
	err := db.updateCatalog(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketSegs).Delete(u64(s.lastSeq)); err != nil {
			return err
		}
		db.segs = slices.DeleteFunc(slices.Clone(db.segs), func(x segInfo) bool { return x.lastSeq == s.lastSeq })
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete segment %d: %w", s.lastSeq, err)
	}
	db.m.retentionDeleted.WithLabelValues("segments").Inc()
	return nil
}

// deleteExpiredRunsAndTerms removes trace-ID runs that only cover deleted
// chunks, and postings of deleted segments.
func (db *DB) deleteExpiredRunsAndTerms() error {
	db.catMu.RLock()
	live := make(map[uint64]bool, len(db.segs))
	var newest uint64 // postings of later segments are not in this snapshot
	for _, sg := range db.segs {
		live[sg.lastSeq] = true
		newest = max(newest, sg.lastSeq)
	}
	segs := slices.Clone(db.segs)
	// Loaded with the segments: a segment is in db.segs before persistedTo
	// passes it, so no postings of a segment missing from live are taken
	// for expired ones.
	persisted := db.persistedTo.Load()
	var expired []runInfo
	for _, ri := range db.runs {
		if !overlapsAny(segs, ri.firstSeq, ri.lastSeq) && ri.lastSeq <= newest {
			expired = append(expired, ri)
		}
	}
	db.catMu.RUnlock()
	for _, ri := range expired {
		// The header goes first (the run no longer exists for readers),
		// then its pages in bounded transactions.
		err := db.updateCatalog(func(tx *bolt.Tx) error {
			if err := tx.Bucket(bucketRuns).Delete(u64(ri.id)); err != nil {
				return err
			}
			keep := db.runs[:0:0]
			for _, r := range db.runs {
				if r.id != ri.id {
					keep = append(keep, r)
				}
			}
			db.runs = keep
			return nil
		})
		if err != nil {
			return fmt.Errorf("delete run %d: %w", ri.id, err)
		}
		if err := db.deleteRunPages(ri.id); err != nil {
			return fmt.Errorf("delete pages of run %d: %w", ri.id, err)
		}
	}
	if err := db.deleteExpiredPostings(live, persisted); err != nil {
		return err
	}
	return db.deleteExpiredTerms(live, newest)
}

// deleteExpiredPostings deletes the postings of deleted segments from
// bucket postings, whose keys start with their segment's key: it skips
// each live segment's keys with one seek, and deletes the others a batch
// per transaction. Segments after persisted (a checkpoint in progress)
// are left.
func (db *DB) deleteExpiredPostings(live map[uint64]bool, persisted uint64) error {
	var from uint64
	for {
		var keys [][]byte
		err := db.bolt.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketPostings).Cursor()
			for k, _ := c.Seek(u64(from)); k != nil && len(keys) < retentionBatch; {
				if len(k) < 8 {
					// Not a postings key; never written by this code.
					k, _ = c.Next()
					continue
				}
				seg := binary.BigEndian.Uint64(k)
				if seg > persisted {
					from = 0
					return nil
				}
				if live[seg] {
					from = seg + 1
					k, _ = c.Seek(u64(from))
					continue
				}
				keys = append(keys, bytes.Clone(k))
				from = seg
				k, _ = c.Next()
			}
			if len(keys) < retentionBatch {
				from = 0 // reached the end
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := db.deleteKeys(bucketPostings, keys); err != nil {
			return fmt.Errorf("delete postings: %w", err)
		}
		if from == 0 {
			return nil
		}
	}
}

// deleteKeys deletes keys from bucket name in one transaction.
func (db *DB) deleteKeys(name []byte, keys [][]byte) error {
	if len(keys) == 0 {
		return nil
	}
	return db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(name)
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// deleteExpiredTerms deletes the postings of deleted segments from bucket
// terms (files from schema 3 and older: segments before postings_from),
// whose keys end with their segment's key: a full scan, skipped once the
// bucket is empty.
func (db *DB) deleteExpiredTerms(live map[uint64]bool, newest uint64) error {
	var after []byte
	for {
		var keys [][]byte
		err := db.bolt.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketTerms).Cursor()
			k, _ := c.First()
			if k == nil {
				after = nil // empty: nothing left from schema 3
				return nil
			}
			if after != nil {
				k, _ = c.Seek(after)
				if k != nil && bytes.Equal(k, after) {
					k, _ = c.Next()
				}
			}
			for ; k != nil && len(keys) < retentionBatch; k, _ = c.Next() {
				after = bytes.Clone(k)
				if seg := binary.BigEndian.Uint64(k[max(0, len(k)-8):]); len(k) >= 8 && !live[seg] && seg <= newest {
					keys = append(keys, bytes.Clone(k))
				}
			}
			if k == nil {
				after = nil
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := db.deleteKeys(bucketTerms, keys); err != nil {
			return fmt.Errorf("delete postings: %w", err)
		}
		if after == nil {
			return nil
		}
	}
}

// overlapsAny reports whether a segment of segs (ascending) holds a chunk
// in [first, last].
func overlapsAny(segs []segInfo, first, last uint64) bool {
	i, _ := slices.BinarySearchFunc(segs, first, func(s segInfo, q uint64) int { return cmpU64(s.lastSeq, q) })
	return i < len(segs) && segs[i].firstSeq <= last
}

// deleteExpiredMetricChunks deletes metric chunks, oldest first, whose
// commit time and newest point are older than cutoff.
func (db *DB) deleteExpiredMetricChunks(cutoff int64) error {
	var after []byte // resume point of the scan
	for {
		var keys [][]byte
		err := db.bolt.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketMChunks).Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
			}
			for ; k != nil && len(keys) < retentionBatch; k, v = c.Next() {
				commit := chunkCommitTime(v)
				if commit >= cutoff {
					break // commits are in order: no later chunk expired
				}
				// A chunk whose header does not decode expires by its
				// commit time alone.
				_, maxT, _, _, err := metricChunkHeader(v)
				if err == nil && min(maxT, commit+int64(MaxFutureSkew)) >= cutoff {
					continue // kept for its points; later chunks may expire
				}
				keys = append(keys, bytes.Clone(k))
				after = binary.BigEndian.AppendUint64(nil, binary.BigEndian.Uint64(k)+1)
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return err
		}
		err = db.bolt.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketMChunks)
			for _, k := range keys {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("delete metric chunks: %w", err)
		}
		db.m.retentionDeleted.WithLabelValues("metric_chunks").Add(float64(len(keys)))
		if len(keys) < retentionBatch {
			return nil
		}
	}
}
