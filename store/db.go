package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/membudget"
)

// SchemaVersion is the on-disk format version written to and checked in the
// meta bucket. See FORMAT.md. Version 2 added the alert buckets
// (alert_state, alert_history), version 3 the synthetic-run buckets
// (synthetic_runs, synthetic_byid, synthetic_bycorr, synthetic_bytime);
// Open upgrades a file of version 1 or 2 in place.
const SchemaVersion = 4

// minSchemaVersion is the oldest schema version Open upgrades in place.
const minSchemaVersion = 1

// FileName is the name of the bbolt file inside the data directory.
const FileName = "flowscope.db"

// Bucket names (FORMAT.md describes each).
var (
	bucketMeta     = []byte("meta")
	bucketChunks   = []byte("chunks")
	bucketSegs     = []byte("segs")
	bucketTerms    = []byte("terms") // postings of segments before meta postings_from (schema 3 and older)
	bucketPostings = []byte("postings")
	bucketRuns     = []byte("runs")
	bucketRunPages = []byte("runpages")
	bucketOps      = []byte("ops")
	bucketMChunks  = []byte("mchunks")
	bucketMNames   = []byte("mnames")

	allBuckets = [][]byte{bucketMeta, bucketChunks, bucketSegs, bucketTerms, bucketPostings, bucketRuns,
		bucketRunPages, bucketOps, bucketMChunks, bucketMNames, bucketRollups, bucketRollupQ, bucketImports,
		bucketAlertState, bucketAlertHistory,
		bucketSynthRuns, bucketSynthByID, bucketSynthByCorr, bucketSynthByTime}

	keySchema     = []byte("schema")
	keyCheckpoint = []byte("checkpoint") // last chunk seq covered by a persisted segment
	keyRunSeq     = []byte("runseq")     // last run ID handed out
	keyCreated    = []byte("created")
	// keyPostingsFrom is the first segment key whose postings are in
	// bucket postings; older segments' are in terms (FORMAT.md).
	keyPostingsFrom = []byte("postings_from")
	keyClosed       = []byte("closed") // Unix ns of the last clean Close
)

// defaultCorrelationKeys are the attribute keys whose values are indexed as
// correlation IDs unless Options.CorrelationKeys says otherwise.
var defaultCorrelationKeys = []string{
	"correlation.id", "correlation_id", "x-correlation-id", "request.id", "x-request-id",
	"http.request.header.x-correlation-id", "http.request.header.x-request-id",
}

// DefaultCorrelationKeys returns (a copy of) the attribute keys indexed as
// correlation IDs when Options.CorrelationKeys is nil.
func DefaultCorrelationKeys() []string { return slices.Clone(defaultCorrelationKeys) }

// DefaultOptions returns the options a zero Options stands for, every
// default filled in (the configuration's defaults are derived from it).
func DefaultOptions() Options {
	var o Options
	o.setDefaults()
	return o
}

// Options configure a DB. The zero value of every field selects its default.
type Options struct {
	// Retention is how long data is kept: a segment is deleted once both its
	// commit time and its newest span end are older than Retention.
	// Default 7 days.
	Retention time.Duration
	// QueueBytes bounds the encoded size of requests waiting for commit;
	// writes beyond it fail with ErrOverloaded. Default 256 MiB.
	QueueBytes int64
	// Budget is the process-wide memory budget for client data in flight
	// (package membudget). The store takes from it the bytes of every
	// request from its arrival until it is committed and aggregated, and
	// refuses writes that do not fit with ErrOverloaded. Nil: only
	// QueueBytes bounds the commit queue.
	Budget *membudget.Budget
	// CorrelationKeys lists the attribute keys indexed as correlation IDs.
	// Default DefaultCorrelationKeys().
	CorrelationKeys []string
	// CheckpointInterval is how often the in-memory index of recent chunks is
	// persisted as a segment. It bounds the work of recovery. Default 10s.
	CheckpointInterval time.Duration
	// CheckpointSpans triggers a checkpoint early when the in-memory index
	// covers this many spans. Default 2,000,000.
	CheckpointSpans int
	// CheckpointBytes triggers a checkpoint early when the in-memory index
	// of recent chunks (terms, postings, trace IDs) is estimated to hold
	// this much memory: with many distinct attribute values (user IDs,
	// URLs with IDs) the index of a few seconds of spans is bigger than
	// the requests themselves. Default 48 MiB.
	CheckpointBytes int64
	// MappedResidentLimit bounds the file-backed resident memory of the
	// process — the pages of the store's memory-mapped file it touched:
	// past it (checked every second) the mapping is advised MADV_DONTNEED,
	// which unmaps the pages from the process and leaves them in the page
	// cache. Default 256 MiB; negative: never (Linux only).
	MappedResidentLimit int64
	// SyncFreelist writes bbolt's freelist in every commit. Off (the
	// default), a commit saves that write — about 10 % of the CPU of
	// durable ingest — and Open after a crash rebuilds the freelist by
	// walking every page of the file, which takes seconds per few GB; a
	// clean Close writes the freelist either way. On, Open after a crash
	// takes the same time whatever the size of the store.
	SyncFreelist bool
	// RetentionInterval is how often expired data is deleted. Default 1m.
	RetentionInterval time.Duration
	// SyntheticRetention is how long synthetic run results are kept, by
	// their start time (DB.SaveSyntheticRun). Zero or negative: 30 days.
	SyntheticRetention time.Duration
	// Logger receives the store's rare events. Default: discard.
	Logger *slog.Logger
	// Registerer receives the store's self-metrics. Default: none.
	Registerer prometheus.Registerer
	// Now returns the current time. Default time.Now.
	Now func() time.Time

	// Aggregation configures the live latency rollups and the flow graph.
	// Zero fields take aggregate.DefaultOptions; WindowWidth must be 10s.
	Aggregation aggregate.Options
	// DisableAggregation turns rollups off (for benchmarks and diagnosis):
	// FlowGraph and Latency then return empty results.
	DisableAggregation bool
	// RollupRetention is how long rollups of the 10 s, 1 min and 1 h tiers
	// are kept. Defaults: 24h, 7 days (or Retention if longer), 90 days.
	RollupRetention [3]time.Duration
	// RollupFlushInterval is how often in-memory rollup deltas are
	// persisted with the aggregation checkpoint. Default 1s.
	RollupFlushInterval time.Duration
	// AggregationWait bounds how long a rollup query (FlowGraph, Latency)
	// waits for the spans acknowledged before it to be aggregated; past
	// it the query is served from the rollups as they are, counted in
	// flowscope_store_aggregation_wait_timeouts_total and logged.
	// Default 5s.
	AggregationWait time.Duration
}

func (o *Options) setDefaults() {
	if o.Retention <= 0 {
		o.Retention = 7 * 24 * time.Hour
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = 256 << 20
	}
	if o.CorrelationKeys == nil {
		o.CorrelationKeys = DefaultCorrelationKeys()
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = 10 * time.Second
	}
	if o.MappedResidentLimit == 0 {
		o.MappedResidentLimit = 256 << 20
	}
	if o.CheckpointBytes <= 0 {
		o.CheckpointBytes = 48 << 20
	}
	if o.CheckpointSpans <= 0 {
		o.CheckpointSpans = 2_000_000
	}
	if o.RetentionInterval <= 0 {
		o.RetentionInterval = time.Minute
	}
	if o.SyntheticRetention <= 0 {
		o.SyntheticRetention = 30 * 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	def := aggregate.DefaultOptions()
	if o.Aggregation.WindowWidth == 0 {
		o.Aggregation.WindowWidth = def.WindowWidth
	}
	if o.Aggregation.PairWait == 0 {
		o.Aggregation.PairWait = def.PairWait
	}
	if o.Aggregation.SignificantDigits == 0 {
		o.Aggregation.SignificantDigits = def.SignificantDigits
	}
	if o.Aggregation.MaxValue == 0 {
		o.Aggregation.MaxValue = def.MaxValue
	}
	if o.Aggregation.MaxExemplars == 0 {
		o.Aggregation.MaxExemplars = def.MaxExemplars
	}
	if o.Aggregation.MaxPending == 0 {
		o.Aggregation.MaxPending = def.MaxPending
	}
	defaults := [3]time.Duration{24 * time.Hour, max(7*24*time.Hour, o.Retention), 90 * 24 * time.Hour}
	for i, d := range o.RollupRetention {
		if d <= 0 {
			o.RollupRetention[i] = defaults[i]
		}
	}
	if o.RollupFlushInterval <= 0 {
		o.RollupFlushInterval = time.Second
	}
	if o.AggregationWait <= 0 {
		o.AggregationWait = 5 * time.Second
	}
}

// DB is the Flowscope store: spans, metric points and their indexes in one
// bbolt file. All methods are safe for concurrent use.
//
// DB itself is the span and metric chunks, their indexes and retention.
// Each other artifact in the file has its own type, embedded here so that
// its methods are the DB's: the rollups (rollups, rollup.go), the alert state and history (alertLog,
// alerts.go), synthetic run results (syntheticLog, synthetic.go) and
// declared architectures (architectures, arch.go). They share the file
// (file) and FORMAT.md documents each one's buckets.
type DB struct {
	*file
	*alertLog
	*syntheticLog
	*architectures
	*rollups

	corr map[string]bool

	// write path
	queue       chan *pending
	published   chan committed // committed batches, in order, to publish and acknowledge
	pubMu       sync.Mutex
	stampSeq    uint64        // last batch stamp handed out
	unpublished []stamp       // batches committed or committing, not yet applied
	pubNotify   chan struct{} // closed (and replaced) whenever a stamp is removed
	queuedBytes atomic.Int64
	writeMu     sync.RWMutex // held for reading while enqueueing; for writing to close
	closing     chan struct{}
	wg          sync.WaitGroup
	nextSeq     uint64   // owned by the committer goroutine
	nextMSeq    uint64   // owned by the committer goroutine
	opsSeen     sync.Map // opKey string → struct{}; persisted ones
	namesSeen   sync.Map // metric name → MetricInfo
	ckptTrigger chan struct{}
	failCommit  func(batch []*pending) error // test hook: fails a commit transaction
	failCkpt    func(s *memSeg) error        // test hook: fails a segment's checkpoint
	futureSkew  time.Duration                // MaxFutureSkew; tests raise it to store what older versions accepted

	// read-side state
	tail  *tail
	catMu sync.RWMutex
	segs  []segInfo // persisted segments, ascending by lastSeq
	runs  []runInfo // persisted trace-ID runs
	// postingsFrom is the first segment key whose postings are in bucket
	// postings (meta postings_from; 0 in files created with schema 4).
	postingsFrom uint64
	// replay is the aggregator's replay after the restart (nil without
	// aggregation); warm is closed once it is done.
	replay *replayPlan
	warm   chan struct{}
	// reindex is the re-index of the chunks committed after the last
	// checkpoint; indexed is closed once it is done (reindexTail), with
	// reindexErr set first when it did not finish (ErrClosed when the
	// store closed before); read only after indexed is closed.
	reindex    reindexPlan
	indexed    chan struct{}
	reindexErr error
	// persistedTo is the last chunk seq covered by a persisted segment
	// (meta checkpoint), set after the segment's transaction committed:
	// postings of later segments may belong to a checkpoint in progress.
	persistedTo atomic.Uint64
	closeM      sync.Mutex
}

// Open opens (creating if needed) the store in directory dir. A file of an
// older supported schema version is upgraded in place (FORMAT.md, "Schema
// versions"). It fails with ErrSchema if the file was written by an
// incompatible version, and fails fast if another process holds the file.
func Open(dir string, opts Options) (*DB, error) {
	opts.setDefaults()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         time.Second,
		NoFreelistSync:  !opts.SyncFreelist,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 1 << 30,
	})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open %s: file is locked by another process", path)
		}
		if pathErr := (*os.PathError)(nil); errors.As(err, &pathErr) {
			return nil, err // "open PATH: permission denied": the path once
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	f := &file{opts: opts, path: path, bolt: bdb, logger: opts.Logger.With("component", "store")}
	db := &DB{
		file:          f,
		alertLog:      &alertLog{file: f, historyMax: MaxAlertEvents},
		syntheticLog:  &syntheticLog{file: f, max: MaxSyntheticRuns},
		architectures: &architectures{file: f},
		rollups:       &rollups{file: f, wcache: newWindowCache(64 << 20), gcache: map[graphCacheKey]graphCacheEntry{}},
		queue:         make(chan *pending, 4096),
		published:     make(chan committed, 2),
		pubNotify:     make(chan struct{}),
		closing:       make(chan struct{}),
		ckptTrigger:   make(chan struct{}, 1),
		corr:          map[string]bool{},
		tail:          newTail(),
		warm:          make(chan struct{}),
		indexed:       make(chan struct{}),
		futureSkew:    MaxFutureSkew,
	}
	db.rollups.expireBefore = db.expiryNow
	db.rollups.warm = db.warm
	for _, k := range opts.CorrelationKeys {
		db.corr[k] = true
	}
	if opts.Aggregation.WindowWidth != time.Duration(tierWidths[0])*time.Second {
		bdb.Close()
		return nil, fmt.Errorf("aggregation window must be %ds, got %v", tierWidths[0], opts.Aggregation.WindowWidth)
	}
	if err := opts.Aggregation.Validate(); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("aggregation options: %w", err)
	}
	db.geom = opts.Aggregation.Geometry()
	if !opts.DisableAggregation {
		db.agg = aggregate.New(opts.Aggregation)
	} else {
		close(db.warm)
	}
	db.m = newStoreMetrics(opts.Registerer, db)
	if err := db.init(); err != nil {
		db.m.unregister()
		bdb.Close()
		return nil, err
	}
	db.wg.Add(7)
	go db.reindexTail()
	go db.mappedLoop()
	go db.commitLoop()
	go db.publishLoop()
	go db.checkpointLoop()
	go db.retentionLoop()
	go db.rollupLoop()
	return db, nil
}

// init creates buckets, checks the schema (upgrading an older supported
// version in the same transaction) and loads the catalog and the tail.
func (db *DB) init() error {
	var upgradedFrom uint64
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		v := meta.Get(keySchema)
		if v == nil {
			if err := meta.Put(keySchema, u64(SchemaVersion)); err != nil {
				return err
			}
			return meta.Put(keyCreated, u64(uint64(db.opts.Now().UnixNano())))
		}
		if len(v) != 8 {
			return fmt.Errorf("%w: file has %x, this collector reads %d", ErrSchema, v, SchemaVersion)
		}
		switch have := binary.BigEndian.Uint64(v); {
		case have == SchemaVersion:
		case have >= minSchemaVersion && have < SchemaVersion:
			// Upgrade in place, in this transaction: the buckets the newer
			// versions added were created above and the records of the
			// older ones are unchanged (FORMAT.md, "Schema versions").
			// Segments persisted from now on keep their postings in
			// bucket postings; the older ones' stay in terms.
			if have < 4 {
				if err := meta.Put(keyPostingsFrom, u64(getU64(meta, keyCheckpoint)+1)); err != nil {
					return fmt.Errorf("upgrade schema %d to %d: %w", have, SchemaVersion, err)
				}
			}
			if err := meta.Put(keySchema, u64(SchemaVersion)); err != nil {
				return fmt.Errorf("upgrade schema %d to %d: %w", have, SchemaVersion, err)
			}
			upgradedFrom = have
		default:
			return fmt.Errorf("%w: file has version %d, this collector reads %d to %d",
				ErrSchema, have, minSchemaVersion, SchemaVersion)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("init store: %w", err)
	}
	if upgradedFrom != 0 {
		db.logger.Info("upgraded store schema", "from", upgradedFrom, "to", SchemaVersion)
	}
	if err := db.loadCatalog(); err != nil {
		return fmt.Errorf("load catalog: %w", err)
	}
	if err := db.sweepPostings(); err != nil {
		return fmt.Errorf("remove postings of an unfinished checkpoint: %w", err)
	}
	if err := db.planRecovery(); err != nil {
		return fmt.Errorf("plan the recovery of recent chunks: %w", err)
	}
	return nil
}

// Close stops accepting writes, commits everything already queued, persists
// the in-memory index and closes the file. It is safe to call twice.
func (db *DB) Close() error {
	db.closeM.Lock()
	defer db.closeM.Unlock()
	db.writeMu.Lock()
	already := db.closed.Swap(true)
	db.writeMu.Unlock()
	if already {
		return nil
	}
	close(db.closing)
	db.wg.Wait()
	// Persist the open deltas (no early expiry: pending halves are loaded
	// from the aggregator's state file, or rebuilt from the chunks, on the
	// next start), the aggregator's state, then the tail index.
	err := db.flushRollups(false)
	if err == nil && db.agg != nil {
		if serr := db.saveAggState(); serr != nil {
			db.logger.Warn("cannot save the aggregator's state; the next start replays the chunks instead", "err", serr)
		}
	}
	if cerr := db.checkpoint(); err == nil {
		err = cerr
	}
	if cerr := db.syncFreelist(); err == nil {
		err = cerr
	}
	if cerr := db.bolt.Close(); err == nil {
		err = cerr
	}
	if db.m != nil {
		db.m.unregister()
	}
	return err
}

// file is the bbolt file every artifact of the store shares, with what
// each one's reads and writes need: the options, the logger, the
// self-metrics, whether the file is closed, and whether the last write
// failed for lack of space.
type file struct {
	opts     Options
	path     string
	bolt     *bolt.DB
	logger   *slog.Logger
	m        *storeMetrics
	closed   atomic.Bool
	diskFull atomic.Bool // the last commit failed for lack of space
}

// syncFreelist commits one last transaction that writes bbolt's freelist,
// so that the next Open reads it from its page instead of rebuilding it
// by walking every page of the file (NoFreelistSync, which Open sets
// unless Options.SyncFreelist, to save writing the freelist in every
// commit): a clean restart then takes the same time whatever the size of
// the store. After a crash the next Open still walks the file, unless
// Options.SyncFreelist.
func (db *DB) syncFreelist() error {
	noSync := db.bolt.NoFreelistSync
	db.bolt.NoFreelistSync = false
	defer func() { db.bolt.NoFreelistSync = noSync }()
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyClosed, u64(uint64(db.opts.Now().UnixNano())))
	})
	if err != nil {
		return fmt.Errorf("write the freelist: %w", err)
	}
	return nil
}

// updateErr classifies the error of a bbolt read-write transaction made
// outside the span commit queue (alert state, synthetic runs): nil stays
// nil, ErrClosed once the store is closed, ErrDiskFull (marking the store
// not ready, as a failed span commit does) for lack of space, else the
// error with op as context.
func (f *file) updateErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bolt.ErrDatabaseNotOpen):
		return ErrClosed
	case isDiskFull(err):
		f.diskFull.Store(true)
		return fmt.Errorf("%s: %w: %w", op, ErrDiskFull, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Geometry returns the geometry of the store's latency rollups (its
// aggregation options'): what decoding and merging them needs.
func (db *DB) Geometry() aggregate.Geometry { return db.geom }

// Path returns the path of the bbolt file.
func (db *DB) Path() string { return db.path }

// SizeBytes returns the size of the bbolt file on disk.
func (db *DB) SizeBytes() int64 {
	fi, err := os.Stat(db.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func getU64(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// Closed reports whether Close was called.
func (db *DB) Closed() bool { return db.closed.Load() }
