package store

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/flowscope/flowscope/aggregate"
)

// Recent flow graphs.
//
// A flow graph over a recent range (the alert evaluator asks for the last
// minute and the last five every second; the UI polls the last 15 minutes)
// merges every record of the range, and the newest windows hold a record
// per flush until they are compacted: at 500 edges that is hundreds of
// thousands of histogram merges a second. But between two queries of the
// same range only the records of the last flushes are new. So the merge of
// the persisted records of [from, to) is kept per (query, from) with the
// last record sequence it holds, and the next query with the same start
// only merges the tier-0 records written since (every record's data is
// first written to tier 0, which keeps it for RollupRetention[0]; the
// coarser tiers only re-encode it), plus the windows the range gained at
// its end. The unflushed deltas are merged on top, as always.

// recentHorizon is how far back a range may start to be merged
// incrementally: well within the retention of tier 0.
const recentHorizon = 3600 // seconds

// recentMaxIdle is how long an unused merge is kept.
const recentMaxIdle = 60 // seconds

// recentMaxEntries bounds the merges kept.
const recentMaxEntries = 32

// packedMerges is the number of records up to which an extension merges
// into packed histograms only (see aggregate.GraphAccumulator.SetPackedOnly).
const packedMerges = 16

type recentKey struct {
	q    aggregate.GraphQuery
	from int64
}

// recentEntry is the merge of the persisted tier-0 data of [from, to)
// with record sequences ≤ seq. mu serializes its extension; g is never
// handed out (queries get a clone).
type recentEntry struct {
	mu   sync.Mutex
	g    *aggregate.Graph
	to   int64
	seq  uint64
	used int64 // Unix seconds of the last use, under recentGraphs.mu
}

// recentGraphs holds the recent merges of a DB.
type recentGraphs struct {
	mu sync.Mutex
	m  map[recentKey]*recentEntry
}

// entry returns the entry of k, created empty when missing, after
// dropping entries idle for recentMaxIdle (and the oldest beyond
// recentMaxEntries).
func (r *recentGraphs) entry(k recentKey, now int64) *recentEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[recentKey]*recentEntry{}
	}
	e := r.m[k]
	if e != nil && now-e.used > recentMaxIdle {
		e = nil // records it misses may have expired since
	}
	if e == nil {
		for ok, oe := range r.m {
			if now-oe.used > recentMaxIdle {
				delete(r.m, ok)
			}
		}
		for len(r.m) >= recentMaxEntries {
			var oldest recentKey
			first := true
			for ok, oe := range r.m {
				if first || oe.used < r.m[oldest].used {
					oldest, first = ok, false
				}
			}
			delete(r.m, oldest)
		}
		e = &recentEntry{}
		r.m[k] = e
	}
	e.used = now
	return e
}

// reset drops every entry: tier-0 records of recent windows were deleted,
// so an extension could miss some.
func (r *recentGraphs) reset() {
	r.mu.Lock()
	clear(r.m)
	r.mu.Unlock()
}

// isRecent reports whether [from, to) is merged incrementally.
func (rs *rollups) isRecent(from, to int64) bool {
	horizon := min(recentHorizon, int64(rs.opts.RollupRetention[0]/time.Second)/2)
	return rs.agg != nil && to-from < longRange && from >= rs.opts.Now().Unix()-horizon
}

// recentGraph returns the flow graph of [from, to) (whole 10-second
// windows) with every unflushed delta of the range, as mergeRange would,
// extending the kept merge of the range's persisted records instead of
// merging them all again.
func (rs *rollups) recentGraph(ctx context.Context, from, to int64, q aggregate.GraphQuery) (*aggregate.Graph, error) {
	e := rs.recent.entry(recentKey{q, from}, rs.opts.Now().Unix())
	e.mu.Lock()
	defer e.mu.Unlock()
	// The snapshot is taken with the entry locked, so the entry never
	// holds records newer than it.
	snap, err := rs.liveSnapshot(from, to)
	if err != nil {
		return nil, err
	}
	defer snap.tx.Rollback()
	if e.g != nil && to < e.to {
		// An older end than the kept merge's: merge without it.
		var items []rollupItem
		err := rs.eachRecord(ctx, snap, from, to, 0, func(it rollupItem) { items = append(items, it) })
		if err != nil {
			return nil, err
		}
		snap.eachOpen(func(it rollupItem) { items = append(items, it) })
		return accumulateGraph(q, rs.geom, items)
	}
	if e.g == nil || e.seq > snap.recSeq {
		var items []rollupItem
		if err := rs.eachRecord(ctx, snap, from, to, 0, func(it rollupItem) { items = append(items, it) }); err != nil {
			e.g = nil
			return nil, err
		}
		g, err := accumulateGraph(q, rs.geom, items)
		if err != nil {
			e.g = nil
			return nil, err
		}
		e.g, e.to, e.seq = g, to, snap.recSeq
	} else if e.seq < snap.recSeq || to > e.to {
		if err := rs.extendRecent(ctx, snap, e, from, to, q); err != nil {
			e.g = nil
			return nil, err
		}
	}
	acc := aggregate.NewGraphAccumulator(q, rs.geom)
	acc.SetPackedOnly()                                      // a few deltas: the last flush's
	snap.eachOpen(func(it rollupItem) { _ = it.addTo(acc) }) // in-memory windows do not fail
	g := acc.Result()
	g.Merge(cloneGraph(e.g))
	return g, nil
}

// extendRecent merges into e the tier-0 records of the snapshot that e
// does not hold: those of [from, e.to) written after e.seq, and every one
// of [e.to, to).
func (rs *rollups) extendRecent(ctx context.Context, snap *rollupSnapshot, e *recentEntry, from, to int64, q aggregate.GraphQuery) error {
	var items []rollupItem
	c := snap.tx.Bucket(bucketRollups).Cursor()
	for k, v := c.Seek(rollupKey(0, from, 0)); k != nil && k[0] == 0; k, v = c.Next() {
		start := int64(binary.BigEndian.Uint64(k[1:9]))
		if start >= to {
			break
		}
		if start < e.to && binary.BigEndian.Uint64(k[9:]) <= e.seq {
			continue
		}
		raw, err := rs.record(k, v)
		if err != nil {
			return err
		}
		items = append(items, rollupItem{raw: raw})
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(items) > 0 {
		acc := aggregate.NewGraphAccumulator(q, rs.geom)
		if len(items) <= packedMerges {
			acc.SetPackedOnly()
		}
		for _, it := range items {
			if err := it.addTo(acc); err != nil {
				return err
			}
		}
		e.g.Merge(acc.Result())
	}
	e.to, e.seq = to, snap.recSeq
	return nil
}
