package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/flowscope/flowscope/aggregate"
)

// Rollup tiers: window widths in seconds. Tier 0 holds the aggregator's
// flushed deltas (many records per window); tier k+1 is built by merging
// tier k records losslessly (compaction).
var tierWidths = [...]int64{10, 60, 3600}

const numTiers = len(tierWidths)

// Rollup buckets and meta keys (FORMAT.md, "Rollups").
var (
	bucketRollups = []byte("rollups") // tier(1) windowStart(8) recSeq(8) → zstd(aggregate window)
	bucketRollupQ = []byte("rollupq") // tier(1) recSeq(8) → windowStart(8): records not yet compacted into tier+1

	keyAggApplied  = []byte("agg_applied")  // last chunk seq applied to flushed rollups
	keyAggExpired  = []byte("agg_expired")  // pairing expiry watermark (Unix ns)
	keyAggReplay   = []byte("agg_replay")   // first chunk seq to re-read after a crash
	keyAggRecSeq   = []byte("agg_recseq")   // last rollup record seq
	keyAggCompact1 = []byte("agg_compact1") // tier-0 records with seq ≤ this are in tier 1
	keyAggCompact2 = []byte("agg_compact2") // tier-1 records with seq ≤ this are in tier 2
)

// compactBatch bounds the records one compaction transaction reads.
const compactBatch = 4096

// rollups persist the aggregation: the flush of the aggregator's windows
// into tier 0 (with the aggregation checkpoint), the compaction into the
// 1-minute and 1-hour tiers, their retention, and the caches that make
// flow-graph and latency queries over them fast (merged closed hours,
// incrementally extended recent ranges, decoded records). FORMAT.md,
// "Rollups". DB embeds it; queries (DB.FlowGraph, DB.Latency) wait for
// the write path's aggregation first.
type rollups struct {
	*file
	agg  *aggregate.Aggregator // nil when aggregation is disabled
	geom aggregate.Geometry
	// expireBefore is the write path's DB.expiryNow: the time up to which
	// pending halves may expire.
	expireBefore func() int64
	// warm is DB.warm, closed once the aggregator's state is loaded or
	// replayed after the start: flushRollups waits for it, since a flush
	// before it would persist the checkpoint of an aggregator that has not
	// got its state yet.
	warm <-chan struct{}

	mu   sync.RWMutex // guards roll
	roll rollupState
	// gcache holds merged flow graphs of closed hours; oldWrites counts
	// rollup writes and deletions in those hours, invalidating it.
	gcacheMu  sync.Mutex
	gcache    map[graphCacheKey]graphCacheEntry
	oldWrites atomic.Int64
	// recent holds incrementally extended merges of recent ranges.
	recent recentGraphs
	// wcache holds decompressed rollup records for queries.
	wcache *windowCache
	// testHookLongGraph, when set, runs in longGraph between the merge of
	// the closed hours and that of the live part.
	testHookLongGraph func()
}

// rollupState is the aggregation state the store persists, guarded by
// rollups.mu.
type rollupState struct {
	recSeq    uint64
	compacted [numTiers]uint64 // compacted[k]: tier k-1 records with seq ≤ it are in tier k
	// unsaved holds flushed windows whose transaction failed; they are
	// retried at the next flush and shown by queries meanwhile.
	unsaved []*aggregate.Window
	// written samples, in order, the record sequence at some times: every
	// record with a sequence ≤ written[i].seq was written at or before
	// written[i].unix. Retention uses it so that records of old windows
	// (imported data) live for the retention period after they were
	// written; see writtenBefore.
	written []seqTime
}

// seqTime is a sample of the record sequence: seq was the last record
// written at unix.
type seqTime struct {
	unix int64
	seq  uint64
}

// writtenSampleEvery spaces the samples of rollupState.written. Sparser
// samples only delay deletions, never advance them.
const writtenSampleEvery = 60 // seconds

// sampleWritten records that every record so far was written at or before
// now, keeping samples at least writtenSampleEvery apart except the last,
// and forgets samples older than the longest rollup retention needs.
// Called with rollups.mu held.
func (rs *rollups) sampleWritten(now int64) {
	w := rs.roll.written
	n := len(w)
	switch {
	case n > 0 && w[n-1].seq == rs.roll.recSeq:
		return
	case n > 1 && now-w[n-2].unix < writtenSampleEvery:
		// Move the last sample forward: the samples before it stay at
		// least writtenSampleEvery apart, and the last one is current.
		w[n-1] = seqTime{unix: now, seq: rs.roll.recSeq}
	default:
		w = append(w, seqTime{unix: now, seq: rs.roll.recSeq})
	}
	oldest := now - int64(slices.Max(rs.opts.RollupRetention[:])/time.Second)
	// Keep the last sample at or before oldest: it bounds the records the
	// longest-kept tier may delete.
	i := 0
	for i+1 < len(w) && w[i+1].unix <= oldest {
		i++
	}
	rs.roll.written = append(w[:0], w[i:]...)
}

// writtenBefore returns the highest record sequence known to have been
// written at or before cutoff (0 if none). Called with rollups.mu held.
func (rs *rollups) writtenBefore(cutoff int64) uint64 {
	w := rs.roll.written
	i := sort.Search(len(w), func(i int) bool { return w[i].unix > cutoff })
	if i == 0 {
		return 0
	}
	return w[i-1].seq
}

func rollupKey(tier int, start int64, recSeq uint64) []byte {
	k := make([]byte, 17)
	k[0] = byte(tier)
	binary.BigEndian.PutUint64(k[1:], uint64(start))
	binary.BigEndian.PutUint64(k[9:], recSeq)
	return k
}

func queueKey(tier int, recSeq uint64) []byte {
	k := make([]byte, 9)
	k[0] = byte(tier)
	binary.BigEndian.PutUint64(k[1:], recSeq)
	return k
}

// encodedWindow is a window record compressed outside any transaction,
// ready for putRollup.
type encodedWindow struct {
	start int64
	val   []byte
}

// encodeRollups compresses windows into their records. It runs before the
// write transaction that puts them, so that compression never holds the
// bbolt writer (and with it every ingest commit).
func encodeRollups(windows []*aggregate.Window) []encodedWindow {
	enc, _ := codecs()
	out := make([]encodedWindow, len(windows))
	var raw []byte
	for i, w := range windows {
		raw = aggregate.AppendWindow(raw[:0], w)
		out[i] = encodedWindow{start: w.Start, val: enc.EncodeAll(raw, make([]byte, 0, len(raw)/3+16))}
	}
	return out
}

// putRollup writes one encoded window record of tier and queues it for
// compaction. The metrics are counted by the caller once the transaction
// committed (countRollups).
func (rs *rollups) putRollup(tx *bolt.Tx, tier int, w encodedWindow) error {
	rs.roll.recSeq++
	if err := tx.Bucket(bucketRollups).Put(rollupKey(tier, w.start, rs.roll.recSeq), w.val); err != nil {
		return fmt.Errorf("put rollup: %w", err)
	}
	if tier+1 < numTiers {
		if err := tx.Bucket(bucketRollupQ).Put(queueKey(tier, rs.roll.recSeq), u64(uint64(w.start))); err != nil {
			return fmt.Errorf("queue rollup: %w", err)
		}
	}
	return nil
}

// countRollups notes committed window records of tier: cached merges of
// their hours are invalidated and the self-metrics counted.
func (rs *rollups) countRollups(tier int, ws []encodedWindow) {
	for _, w := range ws {
		rs.noteRollupWrite(w.start)
		rs.m.rollupRecords.WithLabelValues(tierName(tier)).Inc()
		rs.m.rollupBytes.WithLabelValues(tierName(tier)).Add(float64(len(w.val)))
	}
}

func tierName(tier int) string {
	return [...]string{"10s", "1m", "1h"}[tier]
}

func (rs *rollups) decodeRollup(v []byte) (*aggregate.Window, error) {
	_, dec := codecs()
	raw, err := dec.DecodeAll(v, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress rollup: %w", err)
	}
	return aggregate.DecodeWindow(raw, rs.geom)
}

// flushRollups persists the aggregator's deltas and replay checkpoint,
// once the aggregator's state is loaded or replayed after the start. It
// holds rollups.mu so that queries see a delta either in memory or on disk,
// never both or neither.
func (rs *rollups) flushRollups(expire bool) error {
	if rs.agg == nil {
		return nil
	}
	<-rs.warm
	start := time.Now()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if expire {
		rs.agg.Expire(rs.expireBefore())
	}
	cp := rs.agg.Flush()
	windows := append(rs.roll.unsaved, cp.Windows...)
	encoded := encodeRollups(windows)
	saved := rs.roll
	err := rs.bolt.Update(func(tx *bolt.Tx) error {
		for _, w := range encoded {
			if err := rs.putRollup(tx, 0, w); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		for k, v := range map[string]uint64{
			string(keyAggApplied): cp.AppliedSeq, string(keyAggExpired): uint64(cp.ExpiredBefore),
			string(keyAggReplay): cp.ReplayFrom, string(keyAggRecSeq): rs.roll.recSeq,
		} {
			if err := meta.Put([]byte(k), u64(v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		rs.roll = saved
		rs.roll.unsaved = windows
		return fmt.Errorf("flush rollups: %w", err)
	}
	rs.roll.unsaved = nil
	rs.countRollups(0, encoded)
	rs.sampleWritten(rs.opts.Now().Unix())
	rs.m.flushDuration.Observe(time.Since(start).Seconds())
	return nil
}

// compactRollups merges closed tier-k records into tier k+1 windows.
func (rs *rollups) compactRollups() error {
	now := rs.opts.Now().Unix()
	wait := int64(rs.opts.Aggregation.PairWait/time.Second) + 2
	for tier := 0; tier+1 < numTiers; tier++ {
		for {
			n, err := rs.compactOnce(tier, now, wait)
			if err != nil {
				return err
			}
			if n < compactBatch {
				break
			}
		}
	}
	return nil
}

// compactOnce compacts up to compactBatch queued records of tier into
// tier+1 and returns how many it took. The records are read, merged and
// compressed in a read transaction; the write transaction only puts the
// merged records and dequeues the inputs, so that compaction holds the
// bbolt writer (and with it ingest commits) briefly. rollups.mu is held
// throughout: the queue of tier is only changed here and by flushRollups,
// which both run on the rollup goroutine (or after it ended, in Close).
func (rs *rollups) compactOnce(tier int, now, wait int64) (int, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	width, parentWidth := tierWidths[tier], tierWidths[tier+1]
	var done [][]byte
	var encoded []encodedWindow
	last := rs.roll.compacted[tier+1]
	err := rs.bolt.View(func(tx *bolt.Tx) error {
		q := tx.Bucket(bucketRollupQ)
		rollups := tx.Bucket(bucketRollups)
		merged := map[int64]*aggregate.Window{}
		var order []int64
		c := q.Cursor()
		for k, v := c.Seek(queueKey(tier, last+1)); k != nil && k[0] == byte(tier) && len(done) < compactBatch; k, v = c.Next() {
			recSeq := binary.BigEndian.Uint64(k[1:])
			wstart := int64(binary.BigEndian.Uint64(v))
			if wstart+width+wait > now {
				break // not closed yet: later records wait behind it
			}
			val := rollups.Get(rollupKey(tier, wstart, recSeq))
			if val != nil {
				w, err := rs.decodeRollup(val)
				if err != nil {
					return fmt.Errorf("rollup %d: %w", recSeq, err)
				}
				ps := wstart - wstart%parentWidth
				m := merged[ps]
				if m == nil {
					m = &aggregate.Window{Start: ps, Width: parentWidth,
						Series: map[aggregate.SeriesKey]*aggregate.Rollup{}, Edges: map[aggregate.EdgeKey]*aggregate.Rollup{}}
					merged[ps] = m
					order = append(order, ps)
				}
				m.Merge(w)
			}
			done = append(done, bytes.Clone(k))
			last = recSeq
		}
		windows := make([]*aggregate.Window, len(order))
		for i, ps := range order {
			windows[i] = merged[ps]
		}
		encoded = encodeRollups(windows)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("compact rollups of tier %s: %w", tierName(tier), err)
	}
	if len(done) == 0 {
		return 0, nil
	}
	saved := rs.roll
	err = rs.bolt.Update(func(tx *bolt.Tx) error {
		q := tx.Bucket(bucketRollupQ)
		for _, w := range encoded {
			if err := rs.putRollup(tx, tier+1, w); err != nil {
				return err
			}
		}
		for _, k := range done {
			if err := q.Delete(k); err != nil {
				return err
			}
		}
		rs.roll.compacted[tier+1] = last
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyAggRecSeq, u64(rs.roll.recSeq)); err != nil {
			return err
		}
		return meta.Put([][]byte{nil, keyAggCompact1, keyAggCompact2}[tier+1], u64(last))
	})
	if err != nil {
		rs.roll = saved
		return 0, fmt.Errorf("compact rollups of tier %s: %w", tierName(tier), err)
	}
	rs.countRollups(tier+1, encoded)
	return len(done), nil
}

// expireRollups deletes rollup records whose window ended, and that were
// written, before their tier's retention, only once they are compacted
// into the next tier. A record of an old window (imported data) is thus
// kept for the retention period after it was written: the store knows
// when records were written to within a minute (rollupState.written),
// and only since it was opened — records written before are taken as
// written at the open.
func (rs *rollups) expireRollups() error {
	now := rs.opts.Now().Unix()
	rs.mu.Lock()
	rs.sampleWritten(now)
	rs.mu.Unlock()
	for tier := 0; tier < numTiers; tier++ {
		cutoff := now - int64(rs.opts.RollupRetention[tier]/time.Second)
		for {
			var keys [][]byte
			newest := int64(-1 << 63)
			rs.mu.RLock()
			compacted := uint64(1<<64 - 1)
			if tier+1 < numTiers {
				compacted = rs.roll.compacted[tier+1]
			}
			compacted = min(compacted, rs.writtenBefore(cutoff))
			rs.mu.RUnlock()
			err := rs.bolt.View(func(tx *bolt.Tx) error {
				c := tx.Bucket(bucketRollups).Cursor()
				for k, _ := c.Seek([]byte{byte(tier)}); k != nil && k[0] == byte(tier) && len(keys) < retentionBatch; k, _ = c.Next() {
					start := int64(binary.BigEndian.Uint64(k[1:9]))
					if start+tierWidths[tier] > cutoff {
						break
					}
					if binary.BigEndian.Uint64(k[9:]) <= compacted {
						keys = append(keys, bytes.Clone(k))
						if tier == 0 {
							newest = max(newest, start)
						}
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			if len(keys) == 0 {
				break // this tier is done; the next may have expired records
			}
			err = rs.bolt.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketRollups)
				for _, k := range keys {
					if err := b.Delete(k); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("expire rollups: %w", err)
			}
			rs.oldWrites.Add(1)
			if newest >= now-2*recentHorizon {
				rs.recent.reset() // see recentGraph
			}
			rs.m.retentionDeleted.WithLabelValues("rollups_" + tierName(tier)).Add(float64(len(keys)))
			if len(keys) < retentionBatch {
				break
			}
		}
	}
	return nil
}

// rollupLoop flushes the aggregator every second and compacts and expires
// tiers every ten.
func (db *DB) rollupLoop() {
	defer db.wg.Done()
	// Nothing expires or flushes before the replay after a restart has
	// applied every chunk committed before it (FORMAT.md, "Crash recovery").
	select {
	case <-db.warm:
	case <-db.closing:
		return
	}
	t := time.NewTicker(db.opts.RollupFlushInterval)
	defer t.Stop()
	var n int
	for {
		select {
		case <-db.closing:
			return
		case <-t.C:
		}
		if err := db.flushRollups(true); err != nil {
			db.logger.Error("flush rollups", "err", err)
		}
		if n++; n%10 == 0 {
			if err := db.compactRollups(); err != nil {
				db.logger.Error("compact rollups", "err", err)
			}
			if err := db.expireRollups(); err != nil {
				db.logger.Error("expire rollups", "err", err)
			}
		}
	}
}

// forEachWindow calls fn with the unflushed in-memory deltas overlapping
// [from, to) and the provisional calls of those windows (client halves
// still held that name their callee, from aggregate.Aggregator.Live), then
// every persisted rollup window covering [from, to) (Unix seconds,
// multiples of 10), using the coarsest complete tier for each part of the
// range (with step > 0, only tiers whose width divides step, so no window
// straddles two steps), plus the uncompacted finer records. Every span,
// and every call, provisional or not, contributes exactly once: Live takes
// the deltas and the provisional calls under one lock, and the flush that
// resolves expired provisional calls into deltas holds rollups.mu.
func (rs *rollups) forEachWindow(ctx context.Context, from, to, step int64, fn func(rollupItem)) error {
	if rs.agg == nil {
		return nil
	}
	snap, err := rs.liveSnapshot(from, to)
	if err != nil {
		return err
	}
	defer snap.tx.Rollback()
	snap.eachOpen(fn)
	return rs.eachRecord(ctx, snap, from, to, step, fn)
}

// rollupSnapshot is a consistent view of the rollups: the unflushed
// in-memory deltas and provisional calls of a range, and a read
// transaction holding exactly the records flushed before them (taken
// under rollups.mu, which flushes hold).
type rollupSnapshot struct {
	open, prov []*aggregate.Window
	compacted  [numTiers]uint64
	recSeq     uint64 // the last record sequence in tx
	tx         *bolt.Tx
}

// liveSnapshot takes a rollupSnapshot with the deltas overlapping
// [openFrom, to). The caller rolls back its transaction.
func (rs *rollups) liveSnapshot(openFrom, to int64) (*rollupSnapshot, error) {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	open, prov := rs.agg.Live(openFrom, to)
	for _, w := range rs.roll.unsaved {
		if w.Start < to && w.Start+w.Width > openFrom {
			open = append(open, w)
		}
	}
	tx, err := rs.bolt.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("begin read: %w", err)
	}
	return &rollupSnapshot{open: open, prov: prov, compacted: rs.roll.compacted, recSeq: rs.roll.recSeq, tx: tx}, nil
}

// eachOpen calls fn with the snapshot's deltas and provisional calls.
func (s *rollupSnapshot) eachOpen(fn func(rollupItem)) {
	for _, w := range s.open {
		fn(rollupItem{w: w})
	}
	for _, w := range s.prov {
		fn(rollupItem{w: w, provisional: true})
	}
}

// record returns the decompressed rollup record k (value v), from the
// window cache when it is there.
func (rs *rollups) record(k, v []byte) ([]byte, error) {
	if raw := rs.wcache.get(k); raw != nil {
		return raw, nil
	}
	_, dec := codecs()
	raw, err := dec.DecodeAll(v, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress rollup %x: %w", k, err)
	}
	rs.wcache.put(k, raw)
	return raw, nil
}

// eachRecord calls fn with every persisted record of the snapshot needed
// to cover [from, to) once, using the coarsest complete tier for each part
// of the range (with step > 0, only tiers whose width divides step) plus
// the records of finer tiers not yet compacted into it.
func (rs *rollups) eachRecord(ctx context.Context, snap *rollupSnapshot, from, to, step int64, fn func(rollupItem)) error {
	c := snap.tx.Bucket(bucketRollups).Cursor()
	// records of tier in [a, b) with recSeq > minSeq
	records := func(tier int, a, b int64, minSeq uint64) error {
		for k, v := c.Seek(rollupKey(tier, a, 0)); k != nil && k[0] == byte(tier); k, v = c.Next() {
			if int64(binary.BigEndian.Uint64(k[1:9])) >= b {
				break
			}
			if binary.BigEndian.Uint64(k[9:]) <= minSeq {
				continue
			}
			raw, err := rs.record(k, v)
			if err != nil {
				return err
			}
			fn(rollupItem{raw: raw})
		}
		return nil
	}
	for t := from; t < to; {
		if err := ctx.Err(); err != nil {
			return err
		}
		tier := 0
		for k := numTiers - 1; k > 0; k-- {
			if w := tierWidths[k]; (step == 0 || step%w == 0) && t%w == 0 && t+w <= to {
				tier = k
				break
			}
		}
		w := tierWidths[tier]
		if err := records(tier, t, t+w, 0); err != nil {
			return err
		}
		for k := tier; k > 0; k-- {
			if err := records(k-1, t, t+w, snap.compacted[k]); err != nil {
				return err
			}
		}
		t += w
	}
	return nil
}

// longRange is the range length from which queries start on a whole hour,
// so that they read hourly windows instead of a partial hour of minutes.
const longRange = 6 * 3600

// alignRange turns [start, end] into whole 10-second windows (ranges of 6
// hours or more start on the hour); zero times default to the last 15
// minutes.
func (rs *rollups) alignRange(start, end time.Time) (int64, int64) {
	if end.IsZero() {
		end = rs.opts.Now()
	}
	if start.IsZero() {
		start = end.Add(-15 * time.Minute)
	}
	w := tierWidths[0]
	from := start.Unix() - start.Unix()%w
	to := end.Unix() - end.Unix()%w + w
	if to-from >= longRange {
		from -= from % tierWidths[numTiers-1]
	}
	return from, to
}

// FlowGraph returns the flow graph over [start, end] (to whole 10-second
// windows): nodes and edges at q.Level with merged latency rollups.
// Graph.Seconds is the length of the covered range.
func (db *DB) FlowGraph(ctx context.Context, start, end time.Time, q aggregate.GraphQuery) (*aggregate.Graph, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	if err := db.awaitAggregation(ctx); err != nil {
		return nil, err
	}
	from, to := db.alignRange(start, end)
	// The part of a long range older than closedAge is made of closed,
	// compacted hours; its merged graph is cached until a rollup write
	// touches those hours again (late data, retention).
	cut := db.closedCutoff()
	var g *aggregate.Graph
	if to-from >= longRange && cut > from && cut < to {
		var err error
		if g, err = db.longGraph(ctx, from, cut, to, q); err != nil {
			return nil, err
		}
	} else if db.isRecent(from, to) {
		var err error
		if g, err = db.recentGraph(ctx, from, to, q); err != nil {
			return nil, err
		}
	} else {
		var err error
		if g, err = db.mergeRange(ctx, from, to, q); err != nil {
			return nil, err
		}
	}
	g.Seconds = to - from
	return g, nil
}

// closedAge is how old an hour must be for its flow-graph merge to be
// cached: well past its compaction (window + edge wait) and late spans.
const closedAge = 2 * 3600

// closedCutoff is the start of the newest hour whose end is closedAge old.
func (rs *rollups) closedCutoff() int64 {
	h := tierWidths[numTiers-1]
	c := rs.opts.Now().Unix() - closedAge
	return c - c%h
}

// graphCacheKey identifies a cached merge of closed hours.
type graphCacheKey struct {
	q        aggregate.GraphQuery // every field selects what is merged
	from, to int64
}

// longGraph returns the flow graph of a long range [from, to) whose hours
// before cut are closed: their persisted records' merge comes from the
// cache when no rollup write touched those hours since, and the rest (the
// records of [cut, to), and every unflushed delta and provisional call of
// [from, to), late ones for closed hours too) is merged on top. Both parts
// are read from one snapshot, so that a flush during the query moves a
// delta from the live part into the persisted records without being lost
// (or counted twice) in between.
func (rs *rollups) longGraph(ctx context.Context, from, cut, to int64, q aggregate.GraphQuery) (*aggregate.Graph, error) {
	// The version is read before the snapshot is taken: a cached merge
	// stamped with it can only be older than the snapshot, never newer
	// (countRollups notes a write after its commit).
	version := rs.oldWrites.Load()
	snap, err := rs.liveSnapshot(from, to)
	if err != nil {
		return nil, err
	}
	defer snap.tx.Rollback()
	key := graphCacheKey{q, from, cut}
	rs.gcacheMu.Lock()
	e, ok := rs.gcache[key]
	rs.gcacheMu.Unlock()
	var closed *aggregate.Graph
	if ok && e.version == version {
		closed = cloneGraph(e.g)
	} else {
		var items []rollupItem
		if err := rs.eachRecord(ctx, snap, from, cut, 0, func(it rollupItem) { items = append(items, it) }); err != nil {
			return nil, err
		}
		if closed, err = mergeItems(q, rs.geom, items); err != nil {
			return nil, err
		}
		rs.gcacheMu.Lock()
		if len(rs.gcache) >= 64 {
			clear(rs.gcache)
		}
		rs.gcache[key] = graphCacheEntry{g: cloneGraph(closed), version: version}
		rs.gcacheMu.Unlock()
	}
	if rs.testHookLongGraph != nil {
		rs.testHookLongGraph()
	}
	var items []rollupItem
	snap.eachOpen(func(it rollupItem) { items = append(items, it) })
	if err := rs.eachRecord(ctx, snap, cut, to, 0, func(it rollupItem) { items = append(items, it) }); err != nil {
		return nil, err
	}
	live, err := mergeItems(q, rs.geom, items)
	if err != nil {
		return nil, err
	}
	live.Merge(closed)
	return live, nil
}

type graphCacheEntry struct {
	g       *aggregate.Graph
	version int64
}

func cloneGraph(g *aggregate.Graph) *aggregate.Graph {
	c := &aggregate.Graph{Seconds: g.Seconds, Nodes: slices.Clone(g.Nodes), Edges: slices.Clone(g.Edges)}
	for i := range c.Nodes {
		c.Nodes[i].Requests = *c.Nodes[i].Requests.Clone()
	}
	for i := range c.Edges {
		c.Edges[i].Calls = *c.Edges[i].Calls.Clone()
	}
	return c
}

// noteRollupWrite invalidates cached merges of closed hours when a record
// of such an hour is written or deleted.
func (rs *rollups) noteRollupWrite(windowStart int64) {
	if windowStart < rs.closedCutoff() {
		rs.oldWrites.Add(1)
	}
}

// mergeRange merges the persisted rollups of [from, to), the unflushed
// in-memory deltas and the provisional calls of that range into a graph.
func (rs *rollups) mergeRange(ctx context.Context, from, to int64, q aggregate.GraphQuery) (*aggregate.Graph, error) {
	var items []rollupItem
	err := rs.forEachWindow(ctx, from, to, 0, func(it rollupItem) { items = append(items, it) })
	if err != nil {
		return nil, err
	}
	return mergeItems(q, rs.geom, items)
}

// mergeItems merges items into a graph; many of them (a long range) are
// merged in two goroutines, using both halves of the machine.
func mergeItems(q aggregate.GraphQuery, geom aggregate.Geometry, items []rollupItem) (*aggregate.Graph, error) {
	if len(items) < parallelWindows {
		return accumulateGraph(q, geom, items)
	}
	half := len(items) / 2
	type result struct {
		g   *aggregate.Graph
		err error
	}
	done := make(chan result, 1)
	go func() {
		g, err := accumulateGraph(q, geom, items[half:])
		done <- result{g, err}
	}()
	g, err := accumulateGraph(q, geom, items[:half])
	r := <-done
	if err != nil || r.err != nil {
		return nil, errors.Join(err, r.err)
	}
	g.Merge(r.g)
	return g, nil
}

// parallelWindows is the number of windows from which a flow-graph query
// merges in two goroutines.
const parallelWindows = 16

// rollupItem is a window to merge: in memory (w) or encoded (raw, the
// decompressed record, merged without building a Window). A provisional
// window (from aggregate.Aggregator.Live) is only ever merged into a
// query's answer.
type rollupItem struct {
	w           *aggregate.Window
	raw         []byte
	provisional bool
}

// adder is what the flow-graph and latency accumulators share.
type adder interface {
	Add(*aggregate.Window)
	AddProvisional(*aggregate.Window)
	AddEncoded([]byte) error
}

func (it rollupItem) addTo(acc adder) error {
	switch {
	case it.provisional:
		acc.AddProvisional(it.w)
		return nil
	case it.w != nil:
		acc.Add(it.w)
		return nil
	}
	if err := acc.AddEncoded(it.raw); err != nil {
		return fmt.Errorf("rollup record: %w", err)
	}
	return nil
}

func accumulateGraph(q aggregate.GraphQuery, geom aggregate.Geometry, items []rollupItem) (*aggregate.Graph, error) {
	acc := aggregate.NewGraphAccumulator(q, geom)
	for _, it := range items {
		if err := it.addTo(acc); err != nil {
			return nil, err
		}
	}
	return acc.Result(), nil
}

// Latency returns the merged latency distribution selected by q over
// [start, end] (to whole 10-second windows), with a series per q.Step.
func (db *DB) Latency(ctx context.Context, start, end time.Time, q aggregate.LatencyQuery) (*aggregate.Latency, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	if err := db.awaitAggregation(ctx); err != nil {
		return nil, err
	}
	from, to := db.alignRange(start, end)
	if q.Step > 0 {
		if q.Step%tierWidths[0] != 0 {
			return nil, fmt.Errorf("step %ds is not a multiple of %ds", q.Step, tierWidths[0])
		}
		from -= from % q.Step
	}
	acc := aggregate.NewLatencyAccumulator(q, db.geom)
	var addErr error
	err := db.forEachWindow(ctx, from, to, q.Step, func(it rollupItem) {
		if addErr == nil {
			addErr = it.addTo(acc)
		}
	})
	if err = errors.Join(err, addErr); err != nil {
		return nil, err
	}
	return acc.Result(), nil
}
