package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// segInfo is the catalog entry of a persisted segment (bucket "segs").
type segInfo struct {
	firstSeq, lastSeq uint64
	minCommit         int64
	maxCommit         int64
	minStart          int64
	maxStart          int64
	maxEnd            int64
}

// runInfo is the catalog entry of a persisted trace-ID run (bucket "runs").
type runInfo struct {
	id                uint64
	level             int
	firstSeq, lastSeq uint64
	entries           uint64
}

const (
	segVersion = 1
	// runPageEntries is the number of entries in one run page; pages never
	// split the entries of one trace ID, so a page may be slightly larger.
	runPageEntries = 512
	runEntrySize   = 16 + 4 // trace ID, chunk seq minus run firstSeq
	// runFanIn runs of one level are merged into one run of the next level.
	runFanIn = 8
	// maxRunLevel caps merging; maxMergeEntries caps one merge's size so
	// that a merge transaction never holds ingest for long.
	maxRunLevel     = 6
	maxMergeEntries = 4 << 20
)

// checkpoint persists the in-memory segments, oldest first: the active one
// is frozen, then each frozen segment's search postings, service counts and
// chunk bounds (buckets "segs" and "terms") and its sorted trace-ID run
// (buckets "runs" and "runpages") are written, and runs are merged.
//
// It first waits for the re-index after the start (reindexTail), and
// does nothing when that did not finish (the store closed first, or a
// read failed): the next start re-indexes those chunks.
//
// Segments are persisted strictly in order and the checkpoint key only
// moves past a segment once it is written: when one fails (a full disk,
// an I/O error), it stays frozen in memory — readable, and retried at the
// next checkpoint — and no later segment is persisted before it, so
// recovery after a restart re-indexes every chunk not covered by a
// persisted segment.
func (db *DB) checkpoint() error {
	<-db.indexed
	if db.reindexErr != nil {
		return nil // the chunks after the last checkpoint are not all indexed
	}
	db.tail.freeze()
	persisted := false
	for {
		s := db.tail.oldestFrozen()
		if s == nil {
			break
		}
		if err := db.persistSegment(s); err != nil {
			db.m.checkpointFailures.Inc()
			// Keep the segment frozen in memory: it stays readable, and
			// the chunks are durable, so the next checkpoint (or recovery
			// after a restart) persists it.
			return fmt.Errorf("checkpoint: %w", err)
		}
		db.tail.drop(s)
		persisted = true
	}
	if persisted {
		if err := db.mergeRuns(); err != nil {
			db.logger.Error("merge trace index runs failed", "err", err)
		}
	}
	return nil
}

// persistSegment writes one frozen segment. Everything expensive — sorting
// the terms and the trace-ID run, encoding postings and pages — happens
// before any transaction; the run's pages are then written in bounded
// transactions (putRunSteps), and the last one publishes the run with the
// segment record, its postings and the checkpoint key, so that commits
// interleave and never wait long for a checkpoint.
func (db *DB) persistSegment(s *memSeg) error {
	start := time.Now()
	info, rec := encodeSegment(s)
	keys := make([]string, 0, len(s.terms))
	for k := range s.terms {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	type termKV struct{ k, v []byte }
	terms := make([]termKV, 0, len(keys))
	skipped := 0
	for _, k := range keys {
		kb := postingKey(nil, info.lastSeq, k)
		if len(kb) > bolt.MaxKeySize {
			// Ingest refuses what would make such a term (otlpwire's
			// limits); a term that still gets here is not indexed
			// rather than failing the checkpoint.
			skipped++
			continue
		}
		terms = append(terms, termKV{kb, encodePostings(nil, s.terms[k], info.firstSeq)})
	}
	entries := make([]runEntry, 0, len(s.traces))
	for id, seqs := range s.traces {
		for _, q := range seqs {
			entries = append(entries, runEntry{id: id, seq: q})
		}
	}
	run := buildRun(0, info.firstSeq, info.lastSeq, entries)
	// The postings go first, in bounded transactions that commits
	// interleave with: their keys start with the segment's key, so they
	// are appended at the end of the bucket (pages written once, full)
	// and no reader sees them before the segment record below. Keys left
	// by a checkpoint that did not finish are overwritten by its retry or
	// removed on open (sweepPostings).
	for i := 0; i < len(terms); i += postingsBatch {
		batch := terms[i:min(len(terms), i+postingsBatch)]
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketPostings)
			b.FillPercent = 1
			for _, t := range batch {
				if err := b.Put(t.k, t.v); err != nil {
					return fmt.Errorf("put postings: %w", err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	_, err := db.putRunSteps(run, func(tx *bolt.Tx, ri runInfo) error {
		if db.failCkpt != nil {
			if err := db.failCkpt(s); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketSegs).Put(u64(info.lastSeq), rec); err != nil {
			return fmt.Errorf("put segment: %w", err)
		}
		if err := tx.Bucket(bucketMeta).Put(keyCheckpoint, u64(info.lastSeq)); err != nil {
			return err
		}
		db.segs = append(slices.Clone(db.segs), info)
		db.runs = append(slices.Clone(db.runs), ri)
		return nil
	})
	if err != nil {
		return err
	}
	db.persistedTo.Store(info.lastSeq)
	if skipped > 0 {
		db.logger.Warn("index terms too long to index were skipped", "terms", skipped, "segment", info.lastSeq)
	}
	db.m.checkpointDuration.Observe(time.Since(start).Seconds())
	return nil
}

// updateCatalog runs fn in a write transaction while holding the catalog
// lock, so that readers, who snapshot the catalog and begin their read
// transaction under the read lock, always see a catalog that matches their
// transaction. fn may change db.segs and db.runs; on error they are restored.
func (db *DB) updateCatalog(fn func(tx *bolt.Tx) error) error {
	db.catMu.Lock()
	defer db.catMu.Unlock()
	segs, runs := db.segs, db.runs
	err := db.bolt.Update(fn)
	if err != nil {
		db.segs, db.runs = segs, runs
	}
	return err
}

func (db *DB) catalogRuns() []runInfo {
	db.catMu.RLock()
	defer db.catMu.RUnlock()
	return slices.Clone(db.runs)
}

// readSnapshot returns the catalog and a read transaction consistent with
// it. The caller must roll the transaction back.
func (db *DB) readSnapshot() ([]segInfo, []runInfo, *bolt.Tx, error) {
	db.catMu.RLock()
	defer db.catMu.RUnlock()
	tx, err := db.bolt.Begin(false)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("begin read: %w", err)
	}
	return db.segs, db.runs, tx, nil
}

// encodeSegment builds the segment record:
//
//	version byte
//	uvarint firstSeq, lastSeq
//	varint  minCommit, maxCommit, minStart, maxStart, maxEnd
//	uvarint nChunks, then per chunk: uvarint seq-firstSeq, varint commitNs-minCommit,
//	        varint minStart-segMinStart, varint maxStart-segMinStart, varint maxEnd-segMinStart
//	uvarint nServiceSeconds, then per entry: uvarint len, service, varint sec, uvarint spans, uvarint errors
func encodeSegment(s *memSeg) (segInfo, []byte) {
	info := segInfo{
		firstSeq:  s.chunks[0].seq,
		lastSeq:   s.chunks[len(s.chunks)-1].seq,
		minCommit: 1<<63 - 1, minStart: 1<<63 - 1,
	}
	for _, c := range s.chunks {
		info.minCommit = min(info.minCommit, c.commitNs)
		info.maxCommit = max(info.maxCommit, c.commitNs)
		info.minStart = min(info.minStart, c.minStart)
		info.maxStart = max(info.maxStart, c.maxStart)
		info.maxEnd = max(info.maxEnd, c.maxEnd)
	}
	b := []byte{segVersion}
	b = binary.AppendUvarint(b, info.firstSeq)
	b = binary.AppendUvarint(b, info.lastSeq)
	for _, v := range []int64{info.minCommit, info.maxCommit, info.minStart, info.maxStart, info.maxEnd} {
		b = binary.AppendVarint(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(s.chunks)))
	for _, c := range s.chunks {
		b = binary.AppendUvarint(b, c.seq-info.firstSeq)
		b = binary.AppendVarint(b, c.commitNs-info.minCommit)
		b = binary.AppendVarint(b, c.minStart-info.minStart)
		b = binary.AppendVarint(b, c.maxStart-info.minStart)
		b = binary.AppendVarint(b, c.maxEnd-info.minStart)
	}
	svc := make([]*svcCount, 0, len(s.svc))
	for _, c := range s.svc {
		svc = append(svc, c)
	}
	slices.SortFunc(svc, func(a, b *svcCount) int {
		if a.service != b.service {
			return cmp.Compare(a.service, b.service)
		}
		return int(a.sec - b.sec)
	})
	b = binary.AppendUvarint(b, uint64(len(svc)))
	for _, c := range svc {
		b = binary.AppendUvarint(b, uint64(len(c.service)))
		b = append(b, c.service...)
		b = binary.AppendVarint(b, c.sec)
		b = binary.AppendUvarint(b, uint64(c.spans))
		b = binary.AppendUvarint(b, uint64(c.errors))
	}
	return info, b
}

var errCorrupt = errors.New("corrupt record")

// reader decodes varints with a sticky error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if uint64(len(r.b)) < n {
		r.err = errCorrupt
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// decodeSegment decodes a segment record. With full false only the header
// (segInfo) is decoded.
func decodeSegment(rec []byte, full bool) (segInfo, []memChunk, []svcCount, error) {
	if len(rec) == 0 || rec[0] != segVersion {
		return segInfo{}, nil, nil, fmt.Errorf("segment: %w: version", errCorrupt)
	}
	r := reader{b: rec[1:]}
	var info segInfo
	info.firstSeq = r.uvarint()
	info.lastSeq = r.uvarint()
	info.minCommit = r.varint()
	info.maxCommit = r.varint()
	info.minStart = r.varint()
	info.maxStart = r.varint()
	info.maxEnd = r.varint()
	if !full || r.err != nil {
		return info, nil, nil, r.err
	}
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		return info, nil, nil, errCorrupt
	}
	chunks := make([]memChunk, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		c := memChunk{seq: info.firstSeq + r.uvarint()}
		c.commitNs = info.minCommit + r.varint()
		c.minStart = info.minStart + r.varint()
		c.maxStart = info.minStart + r.varint()
		c.maxEnd = info.minStart + r.varint()
		chunks = append(chunks, c)
	}
	n = r.uvarint()
	if n > uint64(len(r.b)) {
		return info, nil, nil, errCorrupt
	}
	svc := make([]svcCount, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		name := string(r.bytes(r.uvarint()))
		svc = append(svc, svcCount{service: name, sec: r.varint(), spans: int64(r.uvarint()), errors: int64(r.uvarint())})
	}
	return info, chunks, svc, r.err
}

// postingsBatch bounds the postings written in one transaction.
const postingsBatch = 32 << 10

// postingKey is segLastSeq(8, big endian) term: a segment's postings are
// adjacent and a checkpoint appends them at the end of bucket postings.
func postingKey(dst []byte, seg uint64, term string) []byte {
	dst = binary.BigEndian.AppendUint64(dst, seg)
	return append(dst, term...)
}

// termKey is uvarint(len(term)) term segLastSeq(8, big endian), the key
// of bucket terms (segments before postings_from): all segments'
// postings of one term are adjacent and in segment order.
func termKey(dst []byte, term string, seg uint64) []byte {
	dst = termPrefix(dst, term)
	return binary.BigEndian.AppendUint64(dst, seg)
}

func termPrefix(dst []byte, term string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(term)))
	return append(dst, term...)
}

// encodePostings writes ascending chunk seqs as uvarint deltas from base.
func encodePostings(dst []byte, seqs []uint64, base uint64) []byte {
	prev := base
	for _, s := range seqs {
		dst = binary.AppendUvarint(dst, s-prev)
		prev = s
	}
	return dst
}

func decodePostings(b []byte, base uint64) ([]uint64, error) {
	var out []uint64
	prev := base
	for len(b) > 0 {
		d, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("postings: %w", errCorrupt)
		}
		b = b[n:]
		prev += d
		out = append(out, prev)
	}
	return out, nil
}

// runEntry is one (trace ID, chunk) pair of a trace-ID run.
type runEntry struct {
	id  TraceID
	seq uint64
}

// sortRunEntries sorts entries by trace ID then chunk seq and drops
// duplicates. It spreads the entries over 65,536 buckets by 16 bits of the
// trace ID (counting sort), then sorts each bucket: with random trace IDs a
// fraction of the cost of one comparison sort of everything. The bits are
// the top ones of the first half of the ID, or of the second half when
// every ID has the same first half (64-bit Zipkin IDs padded with zeros).
func sortRunEntries(e []runEntry) []runEntry {
	if len(e) < 1024 {
		slices.SortFunc(e, compareRunEntries)
		return slices.Compact(e)
	}
	off := 0 // byte offset of the 16 bucket bits in the ID
	first := binary.BigEndian.Uint64(e[0].id[:8])
	if !slices.ContainsFunc(e, func(x runEntry) bool { return binary.BigEndian.Uint64(x.id[:8]) != first }) {
		off = 8
	}
	bucket := func(x *runEntry) int { return int(x.id[off])<<8 | int(x.id[off+1]) }
	var counts [1 << 16]int
	for i := range e {
		counts[bucket(&e[i])]++
	}
	var starts [1<<16 + 1]int
	for b, n := range counts {
		starts[b+1] = starts[b] + n
	}
	out := make([]runEntry, len(e))
	next := starts
	for i := range e {
		b := bucket(&e[i])
		out[next[b]] = e[i]
		next[b]++
	}
	for b := range counts {
		if seg := out[starts[b]:starts[b+1]]; len(seg) > 1 {
			slices.SortFunc(seg, compareRunEntries)
		}
	}
	copy(e, out)
	return slices.Compact(e)
}

// compareRunEntries orders by trace ID, then chunk seq. Trace IDs compare
// as two big-endian words: same order as bytes, a fraction of the cost.
func compareRunEntries(a, b runEntry) int {
	if c := cmpU64(binary.BigEndian.Uint64(a.id[:8]), binary.BigEndian.Uint64(b.id[:8])); c != 0 {
		return c
	}
	if c := cmpU64(binary.BigEndian.Uint64(a.id[8:]), binary.BigEndian.Uint64(b.id[8:])); c != 0 {
		return c
	}
	return cmpU64(a.seq, b.seq)
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// runBuild is a trace-ID run sorted and encoded outside any transaction:
// its pages only need to be put. See writeRun for the format.
type runBuild struct {
	level             int
	firstSeq, lastSeq uint64
	entries           uint64
	firstIDs          []TraceID // first trace ID of each page
	pages             [][]byte
}

// buildRun sorts entries (in place) and encodes them as the pages of a run
// covering chunks [firstSeq, lastSeq]. It touches no transaction, so the
// expensive part of writing a run never holds the bbolt writer.
func buildRun(level int, firstSeq, lastSeq uint64, entries []runEntry) *runBuild {
	entries = sortRunEntries(entries)
	b := &runBuild{level: level, firstSeq: firstSeq, lastSeq: lastSeq, entries: uint64(len(entries))}
	// One allocation for all pages (the pages never split a trace ID, so
	// a few may be longer than runPageEntries; they grow on their own).
	buf := make([]byte, 0, len(entries)*runEntrySize)
	for i := 0; i < len(entries); {
		startLen := len(buf)
		first := entries[i].id
		n := 0
		for i < len(entries) && (n < runPageEntries || entries[i].id == entries[i-1].id) {
			buf = append(buf, entries[i].id[:]...)
			buf = binary.BigEndian.AppendUint32(buf, uint32(entries[i].seq-firstSeq))
			i++
			n++
		}
		b.firstIDs = append(b.firstIDs, first)
		b.pages = append(b.pages, buf[startLen:len(buf):len(buf)])
	}
	return b
}

// putPages puts pages [from, to) of the run under run ID id.
func (b *runBuild) putPages(tx *bolt.Tx, id uint64, from, to int) error {
	pages := tx.Bucket(bucketRunPages)
	pages.FillPercent = 1.0
	for i := from; i < to; i++ {
		key := make([]byte, 24)
		binary.BigEndian.PutUint64(key, id)
		copy(key[8:], b.firstIDs[i][:])
		if err := pages.Put(key, b.pages[i]); err != nil {
			return fmt.Errorf("put run page: %w", err)
		}
	}
	return nil
}

// putHeader puts the run's header, which makes the run exist.
func (b *runBuild) putHeader(tx *bolt.Tx, id uint64) (runInfo, error) {
	ri := runInfo{id: id, level: b.level, firstSeq: b.firstSeq, lastSeq: b.lastSeq, entries: b.entries}
	if err := tx.Bucket(bucketRuns).Put(u64(id), encodeRunInfo(ri)); err != nil {
		return runInfo{}, fmt.Errorf("put run: %w", err)
	}
	return ri, nil
}

// nextRunID allocates a run ID; IDs are never reused, even when the
// transaction that used one is the only one that committed.
func nextRunID(tx *bolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	id := getU64(meta, keyRunSeq) + 1
	if err := meta.Put(keyRunSeq, u64(id)); err != nil {
		return 0, fmt.Errorf("allocate run id: %w", err)
	}
	return id, nil
}

// writeRun stores entries as a new run in tx: a header in "runs" under the
// run ID (level byte, firstSeq, lastSeq, entry count) and pages in
// "runpages" under runID(8) + first trace ID of the page(16), each page a
// sorted array of 20-byte entries (trace ID, uint32 seq-firstSeq).
//
// It sorts and encodes inside the caller's transaction; a large run should
// rather be built with buildRun before the transaction, or written in
// bounded steps with DB.putRunSteps, so that the bbolt writer (and with it
// every commit) is not held while it sorts and writes.
func writeRun(tx *bolt.Tx, level int, firstSeq, lastSeq uint64, entries []runEntry) (runInfo, error) {
	return buildRun(level, firstSeq, lastSeq, entries).put(tx)
}

// put writes the whole run, header included, in tx.
func (b *runBuild) put(tx *bolt.Tx) (runInfo, error) {
	id, err := nextRunID(tx)
	if err != nil {
		return runInfo{}, err
	}
	if err := b.putPages(tx, id, 0, len(b.pages)); err != nil {
		return runInfo{}, err
	}
	return b.putHeader(tx, id)
}

// runStepBytes bounds the run pages one transaction of putRunSteps (or of
// a page deletion) writes: about 1 MiB, a few milliseconds of the writer
// plus one commit, so that ingest commits interleave.
const runStepBytes = 1 << 20

// putRunSteps writes b in several transactions of at most runStepBytes of
// pages: the first allocates the run ID, and the last puts the header
// (which makes the run exist) and calls final, under the catalog lock, in
// the same transaction, so that the run and what final records (the
// catalog change that publishes it) commit together. If final or any step
// fails, the pages already written are deleted (best effort: a crash
// leaves them unreferenced, and sweepRunPages removes them later).
func (db *DB) putRunSteps(b *runBuild, final func(tx *bolt.Tx, ri runInfo) error) (runInfo, error) {
	var id uint64
	i := 0
	for {
		j, size := i, 0
		for j < len(b.pages) && (j == i || size+len(b.pages[j]) <= runStepBytes) {
			size += len(b.pages[j])
			j++
		}
		last := j == len(b.pages)
		if last {
			break
		}
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			if id == 0 {
				var err error
				if id, err = nextRunID(tx); err != nil {
					return err
				}
			}
			return b.putPages(tx, id, i, j)
		})
		if err != nil {
			if id != 0 && i > 0 {
				db.deleteRunPages(id)
			}
			return runInfo{}, err
		}
		i = j
	}
	var ri runInfo
	err := db.updateCatalog(func(tx *bolt.Tx) error {
		if id == 0 {
			var err error
			if id, err = nextRunID(tx); err != nil {
				return err
			}
		}
		if err := b.putPages(tx, id, i, len(b.pages)); err != nil {
			return err
		}
		var err error
		if ri, err = b.putHeader(tx, id); err != nil {
			return err
		}
		return final(tx, ri)
	})
	if err != nil {
		if id != 0 && i > 0 {
			db.deleteRunPages(id)
		}
		return runInfo{}, err
	}
	return ri, nil
}

// deleteRunPages deletes the pages of run id (whose header is gone or was
// never written) in transactions of bounded size.
func (db *DB) deleteRunPages(id uint64) error {
	prefix := u64(id)
	for {
		var keys [][]byte
		size := 0
		err := db.bolt.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketRunPages).Cursor()
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && size < runStepBytes; k, v = c.Next() {
				keys = append(keys, bytes.Clone(k))
				size += len(v)
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return err
		}
		err = db.bolt.Update(func(tx *bolt.Tx) error {
			pages := tx.Bucket(bucketRunPages)
			for _, k := range keys {
				if err := pages.Delete(k); err != nil {
					return fmt.Errorf("delete run page: %w", err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
}

// sweepRunPages deletes the pages of runs that have no header: left by a
// crash in the middle of putRunSteps, or by a merge whose old runs'
// pages were still being deleted. It must not run while a putRunSteps is
// in progress (both run on the checkpoint goroutine).
func (db *DB) sweepRunPages() error {
	var orphans []uint64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		c := tx.Bucket(bucketRunPages).Cursor()
		for k, _ := c.First(); k != nil; {
			if len(k) < 8 {
				k, _ = c.Next()
				continue
			}
			id := binary.BigEndian.Uint64(k)
			if runs.Get(u64(id)) == nil {
				orphans = append(orphans, id)
			}
			if id == 1<<64-1 {
				break
			}
			k, _ = c.Seek(u64(id + 1)) // jump to the next run
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("find unreferenced run pages: %w", err)
	}
	for _, id := range orphans {
		if err := db.deleteRunPages(id); err != nil {
			return fmt.Errorf("delete pages of run %d: %w", id, err)
		}
	}
	return nil
}

func encodeRunInfo(ri runInfo) []byte {
	b := make([]byte, 1+8+8+8)
	b[0] = byte(ri.level)
	binary.BigEndian.PutUint64(b[1:], ri.firstSeq)
	binary.BigEndian.PutUint64(b[9:], ri.lastSeq)
	binary.BigEndian.PutUint64(b[17:], ri.entries)
	return b
}

func decodeRunInfo(id uint64, b []byte) (runInfo, error) {
	if len(b) != 25 {
		return runInfo{}, fmt.Errorf("run %d: %w", id, errCorrupt)
	}
	return runInfo{id: id, level: int(b[0]), firstSeq: binary.BigEndian.Uint64(b[1:]),
		lastSeq: binary.BigEndian.Uint64(b[9:]), entries: binary.BigEndian.Uint64(b[17:])}, nil
}

// lookupRun returns the chunk seqs of trace id recorded in run ri.
func lookupRun(tx *bolt.Tx, ri runInfo, id TraceID) []uint64 {
	var out []uint64
	prefix := u64(ri.id)
	seek := append(bytes.Clone(prefix), id[:]...)
	c := tx.Bucket(bucketRunPages).Cursor()
	k, v := c.Seek(seek)
	if k == nil || !bytes.Equal(k, seek) {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil
	}
	n := len(v) / runEntrySize
	// Binary search for the first entry >= id.
	lo, hi := 0, n
	for lo < hi {
		m := (lo + hi) / 2
		if bytes.Compare(v[m*runEntrySize:m*runEntrySize+16], id[:]) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for j := lo; j < n; j++ {
		e := v[j*runEntrySize : (j+1)*runEntrySize]
		if !bytes.Equal(e[:16], id[:]) {
			break
		}
		out = append(out, ri.firstSeq+uint64(binary.BigEndian.Uint32(e[16:])))
	}
	return out
}

// readRun returns all entries of a run, in order.
func readRun(tx *bolt.Tx, ri runInfo) []runEntry {
	out := make([]runEntry, 0, ri.entries)
	prefix := u64(ri.id)
	c := tx.Bucket(bucketRunPages).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		for j := 0; j+runEntrySize <= len(v); j += runEntrySize {
			var e runEntry
			copy(e.id[:], v[j:j+16])
			e.seq = ri.firstSeq + uint64(binary.BigEndian.Uint32(v[j+16:j+20]))
			out = append(out, e)
		}
	}
	return out
}

// errMergeStale aborts a merge whose runs changed (retention deleted one)
// while it was being written.
var errMergeStale = errors.New("runs changed during the merge")

// mergeRuns merges runFanIn consecutive runs of the same level into one run
// of the next level, repeatedly, within the size cap. No step holds the
// bbolt writer for long: the runs are read in read transactions, merged and
// encoded outside any transaction, the new run's pages are written in
// bounded transactions (putRunSteps), the swap — the new run's header in,
// the old runs' headers out, the catalog updated — is one small
// transaction, and the old runs' pages are deleted afterwards in bounded
// transactions. Readers that began before the swap keep reading the old
// runs in their snapshot.
func (db *DB) mergeRuns() error {
	if err := db.sweepRunPages(); err != nil {
		return err
	}
	for {
		runs := db.catalogRuns()
		group := pickMerge(runs)
		if group == nil {
			return nil
		}
		first, last := group[0].firstSeq, group[0].lastSeq
		var n uint64
		for _, ri := range group {
			first = min(first, ri.firstSeq)
			last = max(last, ri.lastSeq)
			n += ri.entries
		}
		if last-first > 1<<32-1 {
			return fmt.Errorf("run merge spans too many chunks")
		}
		all := make([]runEntry, 0, n)
		for _, ri := range group {
			err := db.bolt.View(func(tx *bolt.Tx) error {
				all = append(all, readRun(tx, ri)...)
				return nil
			})
			if err != nil {
				return fmt.Errorf("read run %d: %w", ri.id, err)
			}
		}
		b := buildRun(group[0].level+1, first, last, all)
		all = nil
		_, err := db.putRunSteps(b, func(tx *bolt.Tx, merged runInfo) error {
			drop := map[uint64]bool{}
			for _, ri := range group {
				drop[ri.id] = true
			}
			var keep []runInfo
			for _, ri := range db.runs {
				if !drop[ri.id] {
					keep = append(keep, ri)
				}
			}
			if len(keep) != len(db.runs)-len(group) {
				return errMergeStale
			}
			for _, ri := range group {
				if err := tx.Bucket(bucketRuns).Delete(u64(ri.id)); err != nil {
					return fmt.Errorf("delete run: %w", err)
				}
			}
			db.runs = append(keep, merged)
			return nil
		})
		if errors.Is(err, errMergeStale) {
			continue // pick again from the current catalog
		}
		if err != nil {
			return err
		}
		for _, ri := range group {
			if err := db.deleteRunPages(ri.id); err != nil {
				// The headers are gone: sweepRunPages finishes this.
				return fmt.Errorf("delete pages of merged run %d: %w", ri.id, err)
			}
		}
	}
}

// pickMerge chooses runFanIn runs of the lowest level that has that many,
// oldest first, if their entries fit the merge cap.
func pickMerge(runs []runInfo) []runInfo {
	byLevel := map[int][]runInfo{}
	for _, r := range runs {
		byLevel[r.level] = append(byLevel[r.level], r)
	}
	for level := 0; level < maxRunLevel; level++ {
		rs := byLevel[level]
		if len(rs) < runFanIn {
			continue
		}
		slices.SortFunc(rs, func(a, b runInfo) int { return cmpU64(a.firstSeq, b.firstSeq) })
		group := rs[:runFanIn]
		var n uint64
		for _, r := range group {
			n += r.entries
		}
		if n <= maxMergeEntries && group[len(group)-1].lastSeq-group[0].firstSeq < 1<<32-1 {
			return group
		}
	}
	return nil
}

// checkpointLoop persists the tail every CheckpointInterval, or sooner when
// it grows past CheckpointSpans.
func (db *DB) checkpointLoop() {
	defer db.wg.Done()
	t := time.NewTicker(db.opts.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-db.closing:
			return
		case <-t.C:
		case <-db.ckptTrigger:
		}
		if db.diskFull.Load() {
			db.probeSpace()
		}
		if err := db.checkpoint(); err != nil {
			db.logger.Error("checkpoint failed; retrying at the next one", "err", err, "segments_in_memory", db.tail.frozenCount())
		}
	}
}

// keyProbe is the meta key probeSpace writes.
var keyProbe = []byte("probe")

// probeSpace writes a small record to learn whether a full disk has space
// again, so that the store becomes ready without waiting for a client to
// retry.
func (db *DB) probeSpace() {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyProbe, u64(uint64(db.opts.Now().UnixNano())))
	})
	if err == nil {
		db.diskFull.Store(false)
		db.logger.Info("disk space available again")
	}
}

// loadCatalog reads the segment and run headers, the known operations and
// metric names, and sets the next sequence numbers.
func (db *DB) loadCatalog() error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketSegs).ForEach(func(k, v []byte) error {
			info, _, _, err := decodeSegment(v, false)
			if err != nil {
				return fmt.Errorf("segment %x: %w", k, err)
			}
			db.segs = append(db.segs, info)
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketRuns).ForEach(func(k, v []byte) error {
			ri, err := decodeRunInfo(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return err
			}
			db.runs = append(db.runs, ri)
			return nil
		})
		if err != nil {
			return err
		}
		if k, _ := tx.Bucket(bucketChunks).Cursor().Last(); k != nil {
			db.nextSeq = binary.BigEndian.Uint64(k) + 1
		}
		if n := len(db.segs); n > 0 && db.segs[n-1].lastSeq+1 > db.nextSeq {
			db.nextSeq = db.segs[n-1].lastSeq + 1
		}
		if db.nextSeq == 0 {
			db.nextSeq = 1
		}
		if k, _ := tx.Bucket(bucketMChunks).Cursor().Last(); k != nil {
			db.nextMSeq = binary.BigEndian.Uint64(k) + 1
		} else {
			db.nextMSeq = 1
		}
		meta := tx.Bucket(bucketMeta)
		db.postingsFrom = getU64(meta, keyPostingsFrom)
		db.persistedTo.Store(getU64(meta, keyCheckpoint))
		db.roll.recSeq = getU64(meta, keyAggRecSeq)
		db.roll.written = []seqTime{{unix: db.opts.Now().Unix(), seq: db.roll.recSeq}}
		db.roll.compacted[1] = getU64(meta, keyAggCompact1)
		db.roll.compacted[2] = getU64(meta, keyAggCompact2)
		err = tx.Bucket(bucketOps).ForEach(func(k, _ []byte) error {
			db.opsSeen.Store(string(k), struct{}{})
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketMNames).ForEach(func(k, v []byte) error {
			mi, err := decodeMetricInfo(k, v)
			if err != nil {
				return err
			}
			db.namesSeen.Store(mi.Name, mi)
			return nil
		})
	})
}

// sweepPostings deletes the postings of segments after the checkpoint: a
// checkpoint writes a segment's postings before its record, so a crash in
// between leaves postings that no segment owns (the chunks are re-indexed
// and persisted again). They are at the end of bucket postings.
func (db *DB) sweepPostings() error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		from := getU64(tx.Bucket(bucketMeta), keyCheckpoint) + 1
		c := tx.Bucket(bucketPostings).Cursor()
		n := 0
		for k, _ := c.Seek(u64(from)); k != nil; k, _ = c.Seek(u64(from)) {
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		if n > 0 {
			db.logger.Info("removed the postings of an unfinished checkpoint", "keys", n, "after_checkpoint", from-1)
		}
		return nil
	})
}

// planRecovery plans the two pieces of work a start owes the chunks
// committed before it: the re-index of those after the last checkpoint (at
// most CheckpointInterval or CheckpointSpans of them; reindexTail) and the
// aggregator's replay, which aggregateLoop runs before anything else
// (replayAggregator). Open waits for neither: it is ready as soon as the
// file is open, and the reads that need them wait (awaitIndexed,
// awaitWarm) or answer ErrWarmingUp.
func (db *DB) planRecovery() error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		db.reindex = reindexPlan{from: getU64(meta, keyCheckpoint) + 1, last: db.nextSeq - 1}
		if db.agg != nil {
			db.replay = &replayPlan{
				from:    max(getU64(meta, keyAggReplay), 1),
				applied: getU64(meta, keyAggApplied),
				expired: int64(getU64(meta, keyAggExpired)),
				last:    db.nextSeq - 1,
			}
		}
		return nil
	})
}

// reindexPlan is the re-index after a start: chunks from..last were
// committed after the last checkpoint.
type reindexPlan struct{ from, last uint64 }

// reindexHook, set by tests, runs before the re-index.
var reindexHook func()

// reindexTail re-indexes the chunks committed after the last checkpoint
// into a segment of their own, which it then puts before every segment
// indexed since the start (they hold later chunks), and closes db.indexed:
// from then on every acknowledged span is searchable again, and
// checkpoints may run (checkpoint waits for it, so that segments are
// persisted in chunk order). One goroutine reads and decodes the chunks
// while this one indexes them. A chunk that does not decode is logged and
// skipped: the re-index never stops for one chunk, the others must be
// indexed (reads skip it likewise). When the store closes first, or the
// chunks cannot be read, the re-index stops with db.reindexErr set,
// nothing is checkpointed, and the next start re-indexes the same chunks
// and more.
func (db *DB) reindexTail() {
	defer db.wg.Done()
	defer close(db.indexed)
	if reindexHook != nil {
		reindexHook()
	}
	p := db.reindex
	if p.from > p.last {
		return
	}
	start := time.Now()
	stop := make(chan struct{})
	chunks := make(chan *decodedChunk, replayAhead)
	readErr := make(chan error, 1)
	go func() { readErr <- db.readChunks("recovery", p.from, p.last, chunks, stop) }()
	seg := newMemSeg()
	aborted := false
	for d := range chunks {
		if !aborted {
			select {
			case <-db.closing:
				aborted = true
				close(stop)
			default:
			}
		}
		if aborted {
			continue // drain: the reader stops at its next chunk
		}
		idx, _ := db.indexTraces(&d.traces)
		seg.addChunk(d.seq, d.commitNs, idx)
	}
	err := <-readErr
	switch {
	case aborted:
		db.reindexErr = ErrClosed
		db.logger.Info("the store closed during the re-index; the next start does it again", "from", p.from, "last", p.last)
		return
	case err != nil:
		// Checkpointing the segments indexed since the start would move
		// the checkpoint past the chunks not re-indexed, and lose them
		// from the index for good: nothing is checkpointed, and the next
		// start re-indexes them.
		db.reindexErr = fmt.Errorf("re-index of chunks %d to %d after the start: %w", p.from, p.last, err)
		db.logger.Error("re-index of the chunks after the last checkpoint failed; searches fail and nothing is checkpointed until a restart", "err", err)
		return
	}
	if len(seg.chunks) > 0 {
		db.tail.mu.Lock()
		db.tail.frozen = append([]*memSeg{seg}, db.tail.frozen...)
		db.tail.mu.Unlock()
	}
	d := time.Since(start)
	db.m.reindexSeconds.Set(d.Seconds())
	db.logger.Info("re-indexed the chunks after the last checkpoint", "chunks", len(seg.chunks), "spans", seg.spans,
		"from", p.from, "last", p.last, "duration", d.Round(time.Millisecond))
}

// awaitIndexed waits, for at most Options.AggregationWait, until the
// re-index after the start is done (reindexTail), and otherwise fails
// with ErrWarmingUp: until then searches and trace reads would miss the
// spans committed after the last checkpoint.
func (db *DB) awaitIndexed(ctx context.Context) error {
	err := db.awaitStart(ctx, db.indexed, func() string {
		return fmt.Sprintf("re-indexing chunks %d to %d, committed after the last checkpoint", db.reindex.from, db.reindex.last)
	})
	if err == nil {
		err = db.reindexErr
	}
	return err
}

// replayPlan is the aggregator's replay after a restart (FORMAT.md,
// "Crash recovery"): chunks from..applied rebuild the pairing state,
// applied+1..last (committed before the restart, not yet in persisted
// records) are applied.
type replayPlan struct {
	from, applied, last uint64
	expired             int64
}

// replayHook, set by tests, runs before the aggregator's replay.
var replayHook func()

// replayBatch bounds the chunks read in one read transaction of the
// replay, so that it never holds bbolt's map against a commit that grows
// the file for long.
const replayBatch = 256

// replayAhead bounds the chunks decoded ahead of the aggregator during
// the replay.
const replayAhead = 16

// replayAggregator runs the replay planned by planRecovery, then marks the
// store warm: the rollup loop starts flushing, and rollup queries stop
// waiting. Chunks committed meanwhile wait in aggregateLoop's queue, to be
// applied after it, in commit order. One goroutine reads and decodes the
// chunks (decompression and parsing, about half of the work) while this
// one feeds them to the aggregator, in sequence order.
func (db *DB) replayAggregator() {
	defer close(db.warm)
	if replayHook != nil {
		replayHook()
	}
	p := db.replay
	if p == nil {
		return
	}
	start := time.Now()
	from := p.from
	loaded := db.loadAggState(p)
	if loaded {
		// The state is that after chunk p.applied: apply the chunks
		// committed after it (the last start stopped before flushing them).
		from = p.applied + 1
	}
	if from > p.last {
		if !loaded {
			db.agg.EndRebuild(p.expired, p.applied)
		}
		db.m.replaySeconds.Set(time.Since(start).Seconds())
		return
	}
	chunks := make(chan *decodedChunk, replayAhead)
	go func() {
		if err := db.readChunks("aggregator replay", from, p.last, chunks, nil); err != nil {
			// The chunks are there; a read error here is an I/O error the
			// rest of the store will meet too. Go on with what is applied.
			db.logger.Error("aggregator replay stopped early", "err", err)
		}
	}()
	rebuilding := !loaded
	var rebuilt, applied int
	for d := range chunks {
		if rebuilding && d.seq > p.applied {
			db.agg.EndRebuild(p.expired, p.applied)
			rebuilding = false
		}
		if rebuilding {
			db.agg.Rebuild(d.seq, d.commitNs, &d.traces)
			rebuilt++
		} else {
			db.agg.Apply(d.seq, d.commitNs, &d.traces)
			applied++
		}
	}
	if rebuilding {
		db.agg.EndRebuild(p.expired, p.applied)
	}
	db.m.replaySeconds.Set(time.Since(start).Seconds())
	db.logger.Info("aggregator replay done", "state_file_loaded", loaded, "rebuilt_chunks", rebuilt, "applied_chunks", applied,
		"duration", time.Since(start).Round(time.Millisecond))
}

// readChunks sends the decoded chunks from..last to out, in sequence
// order, and closes it; what names the reader in its logs (recovery,
// aggregator replay). It returns a read error after closing out, without
// the chunks from the one it could not read; it stops early, without an
// error, once stop is closed (nil: never). It copies each batch of stored chunks
// out of a short read transaction and decodes them after it, so that no
// transaction stays open while the aggregator is busy. A chunk that does
// not decode is logged and skipped.
func (db *DB) readChunks(what string, from, last uint64, out chan<- *decodedChunk, stop <-chan struct{}) error {
	defer close(out)
	type raw struct {
		seq uint64
		v   []byte
	}
	var batch []raw
	for from <= last {
		batch = batch[:0]
		err := db.bolt.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketChunks).Cursor()
			k, v := c.Seek(u64(from))
			for ; k != nil && len(batch) < replayBatch; k, v = c.Next() {
				seq := binary.BigEndian.Uint64(k)
				if seq > last {
					break
				}
				batch = append(batch, raw{seq, bytes.Clone(v)})
			}
			if k == nil || binary.BigEndian.Uint64(k) > last {
				from = last + 1
			} else {
				from = binary.BigEndian.Uint64(k)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read chunks from %d: %w", from, err)
		}
		for _, r := range batch {
			d, err := decodeSpanChunk(r.seq, r.v)
			if err != nil {
				db.logger.Error(what+" skipped a chunk that does not decode", "seq", r.seq, "err", err)
				continue
			}
			select {
			case out <- d:
			case <-stop:
				return nil
			}
		}
	}
	return nil
}
