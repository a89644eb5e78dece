package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// Synthetic run results.
//
// The synthetic-check prober stores the result of every run (SyntheticRun)
// with SaveSyntheticRun, in its own bbolt transaction from the caller's
// goroutine like the alert state (see alerts.go): a run is written at most
// a few times a second, waits for bbolt's single writer lock and holds no
// lock of the store. A run is stored once, under four keys (FORMAT.md,
// "Synthetic runs"):
//
//   - synthetic_runs: check 0x00 start runID → duration and outcome. Ordered
//     by (check, start), it answers a check's runs in a range and the
//     statistics of SyntheticChecks without reading any run record (about
//     20 ms for a day of 100 checks run every 10 s).
//   - synthetic_byid: runID → the run record.
//   - synthetic_bycorr: correlationID 0x00 start runID → empty.
//   - synthetic_bytime: start runID → empty: every run in time order, for
//     listings across checks and for retention.
//
// Runs are deleted by the retention loop once their Start is older than
// Options.SyntheticRetention, and beyond the newest MaxSyntheticRuns.

var (
	bucketSynthRuns   = []byte("synthetic_runs")
	bucketSynthByID   = []byte("synthetic_byid")
	bucketSynthByCorr = []byte("synthetic_bycorr")
	bucketSynthByTime = []byte("synthetic_bytime")

	// keySynthRuns is the meta key counting the stored runs, so that the
	// cap is enforced without a scan.
	keySynthRuns = []byte("synthetic_runs")
)

// Synthetic run errors.
var (
	// ErrInvalidSyntheticRun is wrapped by the error of SaveSyntheticRun
	// for a run that fails validation; the message names the field.
	ErrInvalidSyntheticRun = errors.New("invalid synthetic run")
	// ErrDuplicateRun is wrapped by the error of SaveSyntheticRun for a
	// RunID that is already stored; nothing was changed.
	ErrDuplicateRun = errors.New("synthetic run ID already stored")
)

// Limits of a stored synthetic run. A run beyond a count limit, or whose
// Check, RunID or CorrelationID is too long, is refused
// (ErrInvalidSyntheticRun): the prober's configuration validation keeps
// runs within them, so a run beyond them is a bug to report, not data to
// cut. A longer text field is stored cut (see SaveSyntheticRun).
const (
	// MaxSyntheticRuns is the most runs kept: retention deletes the
	// oldest beyond it.
	MaxSyntheticRuns = 2_000_000
	// MaxSyntheticSteps is the most steps of a run.
	MaxSyntheticSteps = 10
	// MaxSyntheticAssertions is the most assertions of a step.
	MaxSyntheticAssertions = 50
	// MaxSyntheticCheckLen is the longest check name, in bytes.
	MaxSyntheticCheckLen = 1024
	// MaxSyntheticIDLen is the longest RunID and CorrelationID, in bytes.
	MaxSyntheticIDLen = 256
)

// Caps of the text fields of a stored run, in bytes (see SaveSyntheticRun).
const (
	// synthTextCap caps the error messages, the body snippet and an
	// assertion's target, expected and actual values.
	synthTextCap = 1024
	// synthURLCap caps a step's URL.
	synthURLCap = 4096
	// synthShortCap caps the other fields: trigger, trace and span IDs,
	// step name and method, assertion type.
	synthShortCap = 256
)

// Limits of SyntheticRunQuery.Limit and SyntheticRunsByCorrelation's limit.
const (
	defaultSyntheticLimit = 100
	maxSyntheticLimit     = 10_000
)

// synthRunVersion is the first byte of a run record.
const synthRunVersion = 1

// Flags of a synthetic_runs value, a record and a step.
const (
	synthOK                = 1
	synthSkipped           = 2
	synthContinueOnFailure = 4
)

// syntheticLog holds the results of synthetic check runs (bucket
// synthetic_runs, with the correlation index synthetic_corr), capped and
// expired by their own retention; FORMAT.md.
type syntheticLog struct {
	*file
	max    uint64       // most synthetic runs kept (MaxSyntheticRuns; tests lower it)
	failTx func() error // test hook: fails a synthetic-run write transaction
}

// SaveSyntheticRun stores run, durable when it returns nil. On an error
// nothing was stored.
//
// run must have a Check (1 to MaxSyntheticCheckLen bytes, no 0x00 byte), a
// RunID (1 to MaxSyntheticIDLen bytes) that no stored run has (else the
// error wraps ErrDuplicateRun), a Start between 1970 and 2262, a Duration
// of at least 0, a CorrelationID of at most MaxSyntheticIDLen bytes without
// a 0x00 byte (empty: the run is not found by correlation), at most
// MaxSyntheticSteps steps of at most MaxSyntheticAssertions assertions
// each, and every string valid UTF-8; otherwise the error wraps
// ErrInvalidSyntheticRun and names the field.
//
// Text fields are stored cut to a cap, at a UTF-8 character boundary and
// ending with "…" when cut: 1 KiB for Error, a step's Error and Body and
// an assertion's Target, Expected and Actual; 4 KiB for a step's URL; 256
// bytes for Trigger, TraceID and a step's Name, Method, SpanID and an
// assertion's Type. Start is read back in UTC; empty Steps and Assertions
// are read back nil. The caller's run is not modified.
//
// A write that fails for lack of space returns an error wrapping
// ErrDiskFull; after Close, ErrClosed.
func (l *syntheticLog) SaveSyntheticRun(ctx context.Context, run SyntheticRun) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validateSyntheticRun(&run); err != nil {
		return fmt.Errorf("save synthetic run %q: %w", run.RunID, err)
	}
	ns := uint64(run.Start.UnixNano())
	rec := encodeSyntheticRun(&run)
	sum := synthSummary(run.Duration, run.OK)
	return l.syntheticUpdate(fmt.Sprintf("save synthetic run %q", run.RunID), func(tx *bolt.Tx) error {
		byID := tx.Bucket(bucketSynthByID)
		if old := byID.Get([]byte(run.RunID)); old != nil {
			check, _, oldNs, _ := decodeSynthHead(old)
			return fmt.Errorf("%w (check %q, start %v)", ErrDuplicateRun, check, time.Unix(0, oldNs).UTC())
		}
		return putSyntheticRun(tx, run.Check, run.CorrelationID, run.RunID, ns, rec, sum)
	})
}

// putSyntheticRun puts a validated run under its four keys and counts it.
func putSyntheticRun(tx *bolt.Tx, check, corr, runID string, ns uint64, rec, sum []byte) error {
	if err := tx.Bucket(bucketSynthByID).Put([]byte(runID), rec); err != nil {
		return fmt.Errorf("put run: %w", err)
	}
	if err := tx.Bucket(bucketSynthRuns).Put(synthRunKey(check, ns, runID), sum); err != nil {
		return fmt.Errorf("put run index: %w", err)
	}
	if err := tx.Bucket(bucketSynthByTime).Put(synthTimeKey(ns, runID), nil); err != nil {
		return fmt.Errorf("put time index: %w", err)
	}
	if corr != "" {
		if err := tx.Bucket(bucketSynthByCorr).Put(synthRunKey(corr, ns, runID), nil); err != nil {
			return fmt.Errorf("put correlation index: %w", err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(keySynthRuns, u64(getU64(meta, keySynthRuns)+1)); err != nil {
		return fmt.Errorf("count runs: %w", err)
	}
	return nil
}

// SyntheticRuns returns the runs selected by q, newest first; runs of the
// same Start come in descending RunID order. q.Check selects the runs of
// that check (exactly; "" selects every check); q.Start and q.End bound
// Start, inclusively, a zero one being unbounded. At most q.Limit runs are
// returned: 100 when it is zero or negative, and never more than 10,000.
// The scan reads only the runs it returns.
func (l *syntheticLog) SyntheticRuns(ctx context.Context, q SyntheticRunQuery) ([]SyntheticRun, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []SyntheticRun{}
	startNs, endNs, ok := synthRange(q.Start, q.End)
	if !ok || bytes.IndexByte([]byte(q.Check), 0) >= 0 {
		return out, nil
	}
	limit := synthLimit(q.Limit)
	var prefix []byte // key prefix of the check's runs; none for every check
	bucket := bucketSynthByTime
	if q.Check != "" {
		prefix = append([]byte(q.Check), 0)
		bucket = bucketSynthRuns
	}
	err := l.bolt.View(func(tx *bolt.Tx) error {
		byID := tx.Bucket(bucketSynthByID)
		c := tx.Bucket(bucket).Cursor()
		// The last key of time endNs precedes the first of endNs+1.
		k, _ := c.Seek(binary.BigEndian.AppendUint64(bytes.Clone(prefix), endNs+1))
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for scanned := 1; k != nil && len(out) < limit; k, _ = c.Prev() {
			if scanned++; scanned%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if !bytes.HasPrefix(k, prefix) {
				break
			}
			ns, runID, err := splitSynthKey(k[len(prefix):])
			if err != nil {
				return fmt.Errorf("%s key %q: %w", bucket, k, err)
			}
			if ns < startNs {
				break
			}
			r, err := getSyntheticRun(byID, runID)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, l.synthReadErr(ctx, "read synthetic runs", err)
	}
	return out, nil
}

// SyntheticRun returns the run runID of check, or an error wrapping
// ErrNotFound when no run of check has that ID.
func (l *syntheticLog) SyntheticRun(ctx context.Context, check, runID string) (SyntheticRun, error) {
	if l.closed.Load() {
		return SyntheticRun{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return SyntheticRun{}, err
	}
	var r SyntheticRun
	err := l.bolt.View(func(tx *bolt.Tx) error {
		byID := tx.Bucket(bucketSynthByID)
		if byID.Get([]byte(runID)) == nil {
			return ErrNotFound
		}
		var err error
		if r, err = getSyntheticRun(byID, []byte(runID)); err != nil {
			return err
		}
		if r.Check != check {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return SyntheticRun{}, l.synthReadErr(ctx, fmt.Sprintf("read synthetic run %q of check %q", runID, check), err)
	}
	return r, nil
}

// SyntheticRunsByCorrelation returns the runs whose CorrelationID is id,
// oldest first (by Start, then RunID), at most limit (0 or negative: 100;
// more than 10,000 is taken as 10,000). An empty id finds nothing.
func (l *syntheticLog) SyntheticRunsByCorrelation(ctx context.Context, id string, limit int) ([]SyntheticRun, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []SyntheticRun{}
	if id == "" || bytes.IndexByte([]byte(id), 0) >= 0 {
		return out, nil
	}
	limit = synthLimit(limit)
	prefix := append([]byte(id), 0)
	err := l.bolt.View(func(tx *bolt.Tx) error {
		byID := tx.Bucket(bucketSynthByID)
		c := tx.Bucket(bucketSynthByCorr).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Next() {
			_, runID, err := splitSynthKey(k[len(prefix):])
			if err != nil {
				return fmt.Errorf("correlation key %q: %w", k, err)
			}
			r, err := getSyntheticRun(byID, runID)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, l.synthReadErr(ctx, "read synthetic runs by correlation", err)
	}
	return out, nil
}

// SyntheticChecks returns, for every check with runs whose Start lies in
// [start, end] (inclusive; a zero bound is unbounded), their count,
// failures, nearest-rank p50 and p99 duration and the newest of them,
// sorted by Check. Checks without a run in the range are left out.
//
// It reads the compact run index (duration and outcome per run), not the
// run records, except the newest run of each check: a range holding
// 864,000 runs (100 checks every 10 s for a day) takes tens of
// milliseconds (BenchmarkSyntheticChecks).
func (l *syntheticLog) SyntheticChecks(ctx context.Context, start, end time.Time) ([]SyntheticCheckStats, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []SyntheticCheckStats{}
	startNs, endNs, ok := synthRange(start, end)
	if !ok {
		return out, nil
	}
	var durs []int64
	err := l.bolt.View(func(tx *bolt.Tx) error {
		byID := tx.Bucket(bucketSynthByID)
		c := tx.Bucket(bucketSynthRuns).Cursor()
		scanned := 0
		for k, _ := c.First(); k != nil; {
			i := bytes.IndexByte(k, 0)
			if i < 0 {
				return fmt.Errorf("run key %q: no 0x00 separator", k)
			}
			check := string(k[:i])
			prefix := bytes.Clone(k[:i+1])
			st := SyntheticCheckStats{Check: check}
			durs = durs[:0]
			var last []byte // runID of the newest run in range
			rk, rv := c.Seek(binary.BigEndian.AppendUint64(prefix, startNs))
			for ; rk != nil && bytes.HasPrefix(rk, prefix); rk, rv = c.Next() {
				if scanned++; scanned%65536 == 0 {
					if err := ctx.Err(); err != nil {
						return err
					}
				}
				ns, runID, err := splitSynthKey(rk[len(prefix):])
				if err != nil {
					return fmt.Errorf("run key %q: %w", rk, err)
				}
				if ns > endNs {
					break
				}
				d, ok, err := decodeSynthSummary(rv)
				if err != nil {
					return fmt.Errorf("run key %q: %w", rk, err)
				}
				durs = append(durs, d)
				if !ok {
					st.Failures++
				}
				last = runID
			}
			if len(durs) > 0 {
				st.Runs = int64(len(durs))
				p99 := nthSmallest(durs, nearestRank(0.99, len(durs))-1)
				p50 := nthSmallest(durs[:nearestRank(0.99, len(durs))], nearestRank(0.5, len(durs))-1)
				st.P50, st.P99 = time.Duration(p50), time.Duration(p99)
				r, err := getSyntheticRun(byID, last)
				if err != nil {
					return err
				}
				st.Last = r
				out = append(out, st)
			}
			// The next check's keys start at check 0x01 or later.
			k, _ = c.Seek(append([]byte(check), 1))
		}
		return nil
	})
	if err != nil {
		return nil, l.synthReadErr(ctx, "read synthetic check statistics", err)
	}
	slices.SortFunc(out, func(a, b SyntheticCheckStats) int { return cmp.Compare(a.Check, b.Check) })
	return out, nil
}

// expireSyntheticRuns deletes, oldest first and in transactions of at most
// retentionBatch runs, the runs that started before cutoff (Unix ns) and
// those beyond the newest l.max, with their index entries.
func (l *syntheticLog) expireSyntheticRuns(cutoff int64) error {
	total := 0
	defer func() {
		if total > 0 {
			l.m.retentionDeleted.WithLabelValues("synthetic_runs").Add(float64(total))
		}
	}()
	type victim struct {
		timeKey     []byte
		check, corr string
		headErr     error
	}
	for {
		var victims []victim
		err := l.bolt.View(func(tx *bolt.Tx) error {
			var excess uint64
			if n := getU64(tx.Bucket(bucketMeta), keySynthRuns); n > l.max {
				excess = n - l.max
			}
			byID := tx.Bucket(bucketSynthByID)
			c := tx.Bucket(bucketSynthByTime).Cursor()
			for k, _ := c.First(); k != nil && len(victims) < retentionBatch; k, _ = c.Next() {
				ns, runID, err := splitSynthKey(k)
				old := err != nil || (cutoff > 0 && ns < uint64(cutoff))
				if !old && uint64(len(victims)) >= excess {
					break // keys sort by time: no later run expired
				}
				vc := victim{timeKey: bytes.Clone(k)}
				if err == nil {
					if rec := byID.Get(runID); rec != nil {
						vc.check, vc.corr, _, vc.headErr = decodeSynthHead(rec)
					}
				}
				victims = append(victims, vc)
			}
			return nil
		})
		if err != nil || len(victims) == 0 {
			return err
		}
		err = l.bolt.Update(func(tx *bolt.Tx) error {
			times, byID := tx.Bucket(bucketSynthByTime), tx.Bucket(bucketSynthByID)
			runs, byCorr := tx.Bucket(bucketSynthRuns), tx.Bucket(bucketSynthByCorr)
			deleted := 0
			for _, vc := range victims {
				if times.Get(vc.timeKey) == nil {
					continue // deleted meanwhile
				}
				if err := times.Delete(vc.timeKey); err != nil {
					return err
				}
				ns, runID, err := splitSynthKey(vc.timeKey)
				if err == nil {
					if err := byID.Delete(runID); err != nil {
						return err
					}
				}
				// A record whose head does not decode leaves its other
				// index entries behind: readers skip those of a missing
				// record.
				if err == nil && vc.headErr == nil && vc.check != "" {
					if err := runs.Delete(synthRunKey(vc.check, ns, string(runID))); err != nil {
						return err
					}
					if vc.corr != "" {
						if err := byCorr.Delete(synthRunKey(vc.corr, ns, string(runID))); err != nil {
							return err
						}
					}
				}
				deleted++
			}
			meta := tx.Bucket(bucketMeta)
			n := getU64(meta, keySynthRuns)
			total += deleted
			return meta.Put(keySynthRuns, u64(n-min(n, uint64(deleted))))
		})
		if err != nil {
			return fmt.Errorf("delete synthetic runs: %w", err)
		}
		if len(victims) < retentionBatch {
			return nil
		}
	}
}

// syntheticUpdate runs fn in a bbolt read-write transaction and classifies
// its error as alertUpdate does.
func (l *syntheticLog) syntheticUpdate(op string, fn func(tx *bolt.Tx) error) error {
	err := l.bolt.Update(func(tx *bolt.Tx) error {
		if l.failTx != nil {
			if err := l.failTx(); err != nil {
				return err
			}
		}
		return fn(tx)
	})
	return l.updateErr(op, err)
}

// synthReadErr wraps the error of a read: the context's error as is,
// ErrClosed for a closed file.
func (l *syntheticLog) synthReadErr(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return err
	}
	return fmt.Errorf("%s: %w", op, closedErr(err))
}

// getSyntheticRun reads and decodes the record of runID; a missing record
// is an error (an index entry without its run).
func getSyntheticRun(byID *bolt.Bucket, runID []byte) (SyntheticRun, error) {
	v := byID.Get(runID)
	if v == nil {
		return SyntheticRun{}, fmt.Errorf("synthetic run %q: indexed but not stored", runID)
	}
	r, err := decodeSyntheticRun(string(runID), v)
	if err != nil {
		return SyntheticRun{}, fmt.Errorf("synthetic run %q: %w", runID, err)
	}
	return r, nil
}

// synthRange returns the bounds of [start, end] as Unix ns for keys, and
// false when the range holds no storable time.
func synthRange(start, end time.Time) (startNs, endNs uint64, ok bool) {
	if !start.IsZero() {
		if start.After(maxNsTime) {
			return 0, 0, false
		}
		startNs = clampNs(start)
	}
	endNs = math.MaxInt64
	if !end.IsZero() {
		if end.Before(unixEpoch) || (!start.IsZero() && end.Before(start)) {
			return 0, 0, false
		}
		endNs = clampNs(end)
	}
	return startNs, endNs, true
}

func synthLimit(limit int) int {
	switch {
	case limit <= 0:
		return defaultSyntheticLimit
	case limit > maxSyntheticLimit:
		return maxSyntheticLimit
	}
	return limit
}

// synthRunKey is the key of a run of check (or of correlation ID) at ns:
// prefix 0x00 ns runID.
func synthRunKey(prefix string, ns uint64, runID string) []byte {
	k := make([]byte, 0, len(prefix)+9+len(runID))
	k = append(k, prefix...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, ns)
	return append(k, runID...)
}

// synthTimeKey is the synthetic_bytime key of a run: ns runID.
func synthTimeKey(ns uint64, runID string) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(runID)), ns), runID...)
}

// splitSynthKey splits the end of a key, ns runID.
func splitSynthKey(k []byte) (ns uint64, runID []byte, err error) {
	if len(k) < 9 {
		return 0, nil, errors.New("truncated key")
	}
	return binary.BigEndian.Uint64(k), k[8:], nil
}

// synthSummary encodes a synthetic_runs value: flags byte (synthOK),
// uvarint duration ns.
func synthSummary(d time.Duration, ok bool) []byte {
	var flags byte
	if ok {
		flags = synthOK
	}
	return binary.AppendUvarint([]byte{flags}, uint64(d))
}

func decodeSynthSummary(v []byte) (dur int64, ok bool, err error) {
	if len(v) < 2 || v[0]&^synthOK != 0 {
		return 0, false, errors.New("bad run summary")
	}
	d, n := binary.Uvarint(v[1:])
	if n <= 0 || 1+n != len(v) || d > math.MaxInt64 {
		return 0, false, errors.New("bad run summary")
	}
	return int64(d), v[0] == synthOK, nil
}

// validateSyntheticRun checks that r can be stored (see SaveSyntheticRun).
func validateSyntheticRun(r *SyntheticRun) error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidSyntheticRun, fmt.Sprintf(format, args...))
	}
	switch {
	case r.Check == "":
		return invalid("empty Check")
	case len(r.Check) > MaxSyntheticCheckLen:
		return invalid("Check is %d bytes, the limit is %d", len(r.Check), MaxSyntheticCheckLen)
	case bytes.IndexByte([]byte(r.Check), 0) >= 0:
		return invalid("Check holds a 0x00 byte")
	case r.RunID == "":
		return invalid("empty RunID")
	case len(r.RunID) > MaxSyntheticIDLen:
		return invalid("RunID is %d bytes, the limit is %d", len(r.RunID), MaxSyntheticIDLen)
	case len(r.CorrelationID) > MaxSyntheticIDLen:
		return invalid("CorrelationID is %d bytes, the limit is %d", len(r.CorrelationID), MaxSyntheticIDLen)
	case bytes.IndexByte([]byte(r.CorrelationID), 0) >= 0:
		return invalid("CorrelationID holds a 0x00 byte")
	case r.Start.IsZero():
		return invalid("Start not set")
	case r.Start.Before(unixEpoch) || r.Start.After(maxNsTime):
		return invalid("Start %v out of range (1970 to 2262)", r.Start)
	case r.Duration < 0:
		return invalid("negative Duration %v", r.Duration)
	case len(r.Steps) > MaxSyntheticSteps:
		return invalid("%d steps, the limit is %d", len(r.Steps), MaxSyntheticSteps)
	}
	for _, f := range [...]struct{ name, v string }{
		{"Check", r.Check}, {"RunID", r.RunID}, {"CorrelationID", r.CorrelationID}, {"TraceID", r.TraceID},
		{"Trigger", r.Trigger}, {"Error", r.Error},
	} {
		if !utf8.ValidString(f.v) {
			return invalid("%s is not valid UTF-8", f.name)
		}
	}
	for i := range r.Steps {
		s := &r.Steps[i]
		if len(s.Assertions) > MaxSyntheticAssertions {
			return invalid("Steps[%d] has %d assertions, the limit is %d", i, len(s.Assertions), MaxSyntheticAssertions)
		}
		for _, f := range [...]struct{ name, v string }{
			{"Name", s.Name}, {"Method", s.Method}, {"URL", s.URL}, {"SpanID", s.SpanID}, {"Error", s.Error}, {"Body", s.Body},
		} {
			if !utf8.ValidString(f.v) {
				return invalid("Steps[%d].%s is not valid UTF-8", i, f.name)
			}
		}
		for j := range s.Assertions {
			a := &s.Assertions[j]
			for _, f := range [...]struct{ name, v string }{
				{"Type", a.Type}, {"Target", a.Target}, {"Expected", a.Expected}, {"Actual", a.Actual},
			} {
				if !utf8.ValidString(f.v) {
					return invalid("Steps[%d].Assertions[%d].%s is not valid UTF-8", i, j, f.name)
				}
			}
		}
	}
	return nil
}

// encodeSyntheticRun encodes r without its RunID, which is the key
// (FORMAT.md, "Synthetic runs"), cutting text fields to their caps:
//
//	version byte (1)
//	string  check, correlationID
//	varint  start (Unix ns)
//	string  traceID, trigger
//	varint  duration
//	byte    flags (1 ok)
//	string  error
//	varint  attempt
//	uvarint nSteps, then per step:
//	        string name, method, url
//	        varint status
//	        byte   flags (1 ok, 2 skipped, 4 continueOnFailure)
//	        string spanID
//	        varint dns, connect, tls, firstByte, total
//	        uvarint nAssertions, then per assertion:
//	                string type, target, expected, actual
//	                byte   ok (0 or 1)
//	        string error, body
func encodeSyntheticRun(r *SyntheticRun) []byte {
	b := make([]byte, 0, 128+len(r.Check)+len(r.CorrelationID)+len(r.TraceID)+len(r.Error)+len(r.Steps)*256)
	b = append(b, synthRunVersion)
	b = appendAlertString(b, r.Check)
	b = appendAlertString(b, r.CorrelationID)
	b = binary.AppendVarint(b, r.Start.UnixNano())
	b = appendCapped(b, r.TraceID, synthShortCap)
	b = appendCapped(b, r.Trigger, synthShortCap)
	b = binary.AppendVarint(b, int64(r.Duration))
	b = append(b, flagIf(r.OK, synthOK))
	b = appendCapped(b, r.Error, synthTextCap)
	b = binary.AppendVarint(b, int64(r.Attempt))
	b = binary.AppendUvarint(b, uint64(len(r.Steps)))
	for i := range r.Steps {
		s := &r.Steps[i]
		b = appendCapped(b, s.Name, synthShortCap)
		b = appendCapped(b, s.Method, synthShortCap)
		b = appendCapped(b, s.URL, synthURLCap)
		b = binary.AppendVarint(b, int64(s.Status))
		b = append(b, flagIf(s.OK, synthOK)|flagIf(s.Skipped, synthSkipped)|flagIf(s.ContinueOnFailure, synthContinueOnFailure))
		b = appendCapped(b, s.SpanID, synthShortCap)
		for _, d := range [...]time.Duration{s.Timings.DNS, s.Timings.Connect, s.Timings.TLS, s.Timings.FirstByte, s.Timings.Total} {
			b = binary.AppendVarint(b, int64(d))
		}
		b = binary.AppendUvarint(b, uint64(len(s.Assertions)))
		for j := range s.Assertions {
			a := &s.Assertions[j]
			b = appendCapped(b, a.Type, synthShortCap)
			b = appendCapped(b, a.Target, synthTextCap)
			b = appendCapped(b, a.Expected, synthTextCap)
			b = appendCapped(b, a.Actual, synthTextCap)
			b = append(b, flagIf(a.OK, synthOK))
		}
		b = appendCapped(b, s.Error, synthTextCap)
		b = appendCapped(b, s.Body, synthTextCap)
	}
	return b
}

// decodeSyntheticRun decodes a record of encodeSyntheticRun.
func decodeSyntheticRun(runID string, v []byte) (SyntheticRun, error) {
	r := SyntheticRun{RunID: runID}
	if len(v) == 0 || v[0] != synthRunVersion {
		return r, errors.New("unknown record version")
	}
	d := &synthDecoder{alertDecoder{archDecoder{b: v[1:]}}}
	r.Check, r.CorrelationID = d.string(), d.string()
	r.Start = time.Unix(0, d.varint()).UTC()
	r.TraceID, r.Trigger = d.string(), d.string()
	r.Duration = time.Duration(d.varint())
	r.OK = d.flags(synthOK)&synthOK != 0
	r.Error = d.string()
	r.Attempt = int(d.varint())
	// A step is at least 14 bytes, an assertion 5.
	if n := d.count(14); n > 0 {
		r.Steps = make([]SyntheticStep, n)
	}
	for i := 0; i < len(r.Steps) && d.err == nil; i++ {
		s := &r.Steps[i]
		s.Name, s.Method, s.URL = d.string(), d.string(), d.string()
		s.Status = int(d.varint())
		f := d.flags(synthOK | synthSkipped | synthContinueOnFailure)
		s.OK, s.Skipped, s.ContinueOnFailure = f&synthOK != 0, f&synthSkipped != 0, f&synthContinueOnFailure != 0
		s.SpanID = d.string()
		for _, p := range [...]*time.Duration{&s.Timings.DNS, &s.Timings.Connect, &s.Timings.TLS, &s.Timings.FirstByte, &s.Timings.Total} {
			*p = time.Duration(d.varint())
		}
		if n := d.count(5); n > 0 {
			s.Assertions = make([]SyntheticAssertion, n)
		}
		for j := 0; j < len(s.Assertions) && d.err == nil; j++ {
			a := &s.Assertions[j]
			a.Type, a.Target, a.Expected, a.Actual = d.string(), d.string(), d.string(), d.string()
			a.OK = d.flags(synthOK) != 0
		}
		s.Error, s.Body = d.string(), d.string()
	}
	if err := d.finish(); err != nil {
		return SyntheticRun{RunID: runID}, err
	}
	return r, nil
}

// decodeSynthHead decodes the first fields of a run record: its check,
// correlation ID and start (Unix ns).
func decodeSynthHead(v []byte) (check, corr string, ns int64, err error) {
	if len(v) == 0 || v[0] != synthRunVersion {
		return "", "", 0, errors.New("unknown record version")
	}
	d := &archDecoder{b: v[1:]}
	check, corr = d.string(), d.string()
	ns = d.varint()
	return check, corr, ns, d.err
}

// synthDecoder reads run records: alertDecoder's fields and flag bytes.
type synthDecoder struct{ alertDecoder }

// flags reads a flags byte; a bit outside valid is an error.
func (d *synthDecoder) flags(valid byte) byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errors.New("truncated flags")
		return 0
	}
	f := d.b[0]
	d.b = d.b[1:]
	if f&^valid != 0 {
		d.err = fmt.Errorf("bad flags %#x", f)
	}
	return f
}

func flagIf(cond bool, f byte) byte {
	if cond {
		return f
	}
	return 0
}

// appendCapped appends s as a string field, cut to at most limit bytes at
// a UTF-8 character boundary and ending with "…" when it is cut.
func appendCapped(b []byte, s string, limit int) []byte {
	return appendAlertString(b, capText(s, limit))
}

// capText returns s cut to at most limit bytes (limit ≥ 3) at a UTF-8
// character boundary, ending with "…" when it is cut.
func capText(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const ellipsis = "…"
	n := limit - len(ellipsis)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + ellipsis
}

// nearestRank returns the nearest rank of quantile q among n values:
// ceil(q·n), at least 1 and at most n — the rank
// aggregate.NearestRankPercentile makes hdrhistogram-go answer.
func nearestRank(q float64, n int) int {
	r := int(math.Ceil(q*float64(n) - 1e-9))
	return max(1, min(r, n))
}

// nthSmallest returns the k-th smallest value of a (0-based), reordering a
// so that a[:k] holds values ≤ a[k] ≤ a[k+1:] (quickselect, median-of-three
// pivots; it falls back to sorting after too many rounds).
func nthSmallest(a []int64, k int) int64 {
	lo, hi := 0, len(a)-1
	for rounds := 0; lo < hi; rounds++ {
		if rounds > 64 {
			slices.Sort(a[lo : hi+1])
			break
		}
		mid := lo + (hi-lo)/2
		if a[mid] < a[lo] {
			a[mid], a[lo] = a[lo], a[mid]
		}
		if a[hi] < a[lo] {
			a[hi], a[lo] = a[lo], a[hi]
		}
		if a[hi] < a[mid] {
			a[hi], a[mid] = a[mid], a[hi]
		}
		pivot := a[mid]
		i, j := lo, hi
		for i <= j {
			for a[i] < pivot {
				i++
			}
			for a[j] > pivot {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		// Now a[lo:j+1] ≤ pivot ≤ a[i:hi+1], and a[j+1:i] == pivot.
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return a[k]
		}
	}
	return a[k]
}
