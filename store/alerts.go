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

	bolt "go.etcd.io/bbolt"
)

// Alert state and history.
//
// The alerting engine keeps its active instances (pending or firing) in
// bucket "alert_state", one record per instance, and every transition and
// notification delivery in bucket "alert_history", keyed by time (FORMAT.md,
// "Alerts"). Both are small and written at most about once per evaluation
// (one second), so they are written with their own bbolt transaction from
// the caller's goroutine, not through the span commit queue: such a
// transaction waits for bbolt's single writer lock (held by a span group
// commit for milliseconds) and holds no lock of the store, so it cannot
// deadlock with the commit, checkpoint, rollup or retention loops. Like
// every bbolt commit it is fsynced before it returns.
//
// Active states are never expired. History is deleted by the retention loop
// once older than Options.Retention, and beyond the newest MaxAlertEvents
// events.

var (
	// bucketAlertState maps rule 0x00 instance key to an alert state
	// record (FORMAT.md).
	bucketAlertState = []byte("alert_state")
	// bucketAlertHistory maps (uint64 Unix ns, uint64 sequence) to an
	// alert event record (FORMAT.md).
	bucketAlertHistory = []byte("alert_history")

	// keyAlertEvents is the meta key counting the records of
	// bucketAlertHistory, so that the cap is enforced without a scan.
	keyAlertEvents = []byte("alert_events")
)

// MaxAlertEvents is the most alert history events kept: retention deletes
// the oldest beyond it.
const MaxAlertEvents = 1_000_000

// Limits of AlertHistoryQuery.Limit.
const (
	defaultAlertHistoryLimit = 100
	maxAlertHistoryLimit     = 10_000
)

// Record versions: the first byte of an alert state or event record.
const (
	alertStateVersion = 1
	alertEventVersion = 1
)

// historyKeyLen is the length of an alert_history key: Unix ns and sequence.
const historyKeyLen = 16

var (
	// unixEpoch and maxNsTime bound the times an alert event may have:
	// its key holds them as unsigned Unix nanoseconds.
	unixEpoch = time.Unix(0, 0)
	maxNsTime = time.Unix(0, math.MaxInt64)
	// minNsTime is the earliest time a record holds (as signed Unix ns).
	minNsTime = time.Unix(0, math.MinInt64)
)

// alertLog is the alert rules' state (bucket alert_state: the pending and
// firing instances) and their history of transitions and notifications
// (bucket alert_history, capped and expired with retention); FORMAT.md.
type alertLog struct {
	*file
	historyMax uint64       // most alert events kept (MaxAlertEvents; tests lower it)
	failTx     func() error // test hook: fails an alert write transaction
}

// SaveAlerts stores the outcome of one evaluation cycle in one bbolt
// transaction: the states in upserts replace those of the same (Rule, Key),
// then the states named by deletes are removed (a missing one is ignored),
// and events are appended to the history. All of it is durable when
// SaveAlerts returns nil; on an error none of it was stored. An event with a
// zero Time is stored with the store's clock (Options.Now); the caller's
// slices are not modified. With nothing to save SaveAlerts does nothing.
//
// A state's Rule must be non-empty without a 0x00 byte and its times within
// the years 1678 to 2262; an event's Time must lie between 1970 and 2262.
// A write that fails for lack of space returns an error wrapping
// ErrDiskFull; after Close, ErrClosed.
func (l *alertLog) SaveAlerts(upserts []AlertState, deletes []AlertStateKey, events []AlertEvent) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if len(upserts)+len(deletes)+len(events) == 0 {
		return nil
	}
	puts := make([][2][]byte, len(upserts))
	for i := range upserts {
		s := &upserts[i]
		if err := validateAlertState(s); err != nil {
			return fmt.Errorf("save alerts: %w", err)
		}
		puts[i] = [2][]byte{alertStateKey(s.Rule, s.Key), encodeAlertState(s)}
	}
	dels := make([][]byte, 0, len(deletes))
	for _, k := range deletes {
		if err := validateAlertRule(k.Rule); err != nil {
			return fmt.Errorf("save alerts: delete %q/%q: %w", k.Rule, k.Key, err)
		}
		dels = append(dels, alertStateKey(k.Rule, k.Key))
	}
	evs, err := l.encodeAlertEvents(events)
	if err != nil {
		return fmt.Errorf("save alerts: %w", err)
	}
	return l.alertUpdate("save alerts", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAlertState)
		for _, p := range puts {
			if err := b.Put(p[0], p[1]); err != nil {
				return fmt.Errorf("put state: %w", err)
			}
		}
		for _, k := range dels {
			if err := b.Delete(k); err != nil {
				return fmt.Errorf("delete state: %w", err)
			}
		}
		return appendAlertEvents(tx, evs)
	})
}

// AppendAlertEvents appends events to the alert history in one bbolt
// transaction, durable when it returns nil (the notifier records its
// deliveries this way). Events are handled as by SaveAlerts: a zero Time
// is the store's clock, and nothing is written for an empty slice.
func (l *alertLog) AppendAlertEvents(events []AlertEvent) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if len(events) == 0 {
		return nil
	}
	evs, err := l.encodeAlertEvents(events)
	if err != nil {
		return fmt.Errorf("append alert events: %w", err)
	}
	return l.alertUpdate("append alert events", func(tx *bolt.Tx) error {
		return appendAlertEvents(tx, evs)
	})
}

// AlertStates returns every persisted alert state (the active instances),
// sorted by Rule, then Key.
func (l *alertLog) AlertStates() ([]AlertState, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	out := []AlertState{}
	err := l.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAlertState).ForEach(func(k, v []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 {
				return fmt.Errorf("state key %q: no 0x00 separator", k)
			}
			s, err := decodeAlertState(v)
			if err != nil {
				return fmt.Errorf("state %q/%q: %w", k[:i], k[i+1:], err)
			}
			s.Rule, s.Key = string(k[:i]), string(k[i+1:])
			out = append(out, s)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read alert states: %w", closedErr(err))
	}
	// Keys already sort so (0x00 is below every other byte); sorting
	// again costs little and does not depend on it.
	slices.SortFunc(out, func(a, b AlertState) int {
		return cmp.Or(cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Key, b.Key))
	})
	return out, nil
}

// AlertHistory returns the alert events selected by q, newest first; events
// of the same time come in reverse insertion order. q.Rule, when set,
// selects the events of that rule (exactly); q.Start and q.End bound Time,
// inclusively, a zero one being unbounded. At most q.Limit events are
// returned: 100 when it is zero or negative, and never more than 10,000.
//
// The scan starts at q.End and stops at q.Start or the limit, so a query
// without Rule reads only what it returns; with Rule it reads past the
// other rules' events.
func (l *alertLog) AlertHistory(ctx context.Context, q AlertHistoryQuery) ([]AlertEvent, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = defaultAlertHistoryLimit
	case limit > maxAlertHistoryLimit:
		limit = maxAlertHistoryLimit
	}
	out := []AlertEvent{}
	var startNs uint64
	if !q.Start.IsZero() {
		if q.Start.After(maxNsTime) {
			return out, nil
		}
		startNs = clampNs(q.Start)
	}
	endNs := uint64(math.MaxInt64)
	if !q.End.IsZero() {
		if q.End.Before(unixEpoch) || (!q.Start.IsZero() && q.End.Before(q.Start)) {
			return out, nil
		}
		endNs = clampNs(q.End)
	}
	rule := []byte(q.Rule)
	err := l.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAlertHistory).Cursor()
		// The last key of time endNs precedes the first of endNs+1.
		k, v := c.Seek(historyKey(endNs+1, 0))
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for scanned := 1; k != nil && len(out) < limit; k, v = c.Prev() {
			if scanned++; scanned%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if len(k) != historyKeyLen {
				return fmt.Errorf("history key %x: not %d bytes", k, historyKeyLen)
			}
			ns := binary.BigEndian.Uint64(k)
			if ns < startNs {
				break
			}
			if q.Rule != "" && !alertEventRuleIs(v, rule) {
				continue
			}
			e, err := decodeAlertEvent(v)
			if err != nil {
				return fmt.Errorf("history record %x: %w", k, err)
			}
			e.Time = time.Unix(0, int64(ns)).UTC()
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return nil, err
		}
		return nil, fmt.Errorf("read alert history: %w", closedErr(err))
	}
	return out, nil
}

// expireAlertEvents deletes, oldest first and in transactions of at most
// retentionBatch deletions, the alert events whose time is before cutoff
// (Unix ns) and those beyond the newest l.historyMax.
func (l *alertLog) expireAlertEvents(cutoff int64) error {
	total := 0
	defer func() {
		if total > 0 {
			l.m.retentionDeleted.WithLabelValues("alert_events").Add(float64(total))
		}
	}()
	for {
		var keys [][]byte
		err := l.bolt.View(func(tx *bolt.Tx) error {
			var excess uint64
			if n := getU64(tx.Bucket(bucketMeta), keyAlertEvents); n > l.historyMax {
				excess = n - l.historyMax
			}
			c := tx.Bucket(bucketAlertHistory).Cursor()
			for k, _ := c.First(); k != nil && len(keys) < retentionBatch; k, _ = c.Next() {
				old := cutoff > 0 && len(k) == historyKeyLen && binary.BigEndian.Uint64(k) < uint64(cutoff)
				if !old && uint64(len(keys)) >= excess {
					break // keys sort by time: no later event expired
				}
				keys = append(keys, bytes.Clone(k))
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return err
		}
		err = l.bolt.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketAlertHistory)
			deleted := 0
			for _, k := range keys {
				if b.Get(k) == nil {
					continue
				}
				if err := b.Delete(k); err != nil {
					return err
				}
				deleted++
			}
			meta := tx.Bucket(bucketMeta)
			n := getU64(meta, keyAlertEvents)
			total += deleted
			return meta.Put(keyAlertEvents, u64(n-min(n, uint64(deleted))))
		})
		if err != nil {
			return fmt.Errorf("delete alert events: %w", err)
		}
		if len(keys) < retentionBatch {
			return nil
		}
	}
}

// alertUpdate runs fn in a bbolt read-write transaction and classifies its
// error: ErrClosed once the store is closed, ErrDiskFull (marking the store
// not ready, as a failed span commit does) for lack of space.
func (l *alertLog) alertUpdate(op string, fn func(tx *bolt.Tx) error) error {
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

// closedErr turns bbolt's error for a closed file into ErrClosed.
func closedErr(err error) error {
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// encodedEvent is an alert event ready to be put: its time (Unix ns) and
// record.
type encodedEvent struct {
	ns  uint64
	val []byte
}

// encodeAlertEvents validates and encodes events, giving those without a
// time the store's clock.
func (l *alertLog) encodeAlertEvents(events []AlertEvent) ([]encodedEvent, error) {
	out := make([]encodedEvent, len(events))
	var now time.Time
	for i := range events {
		e := &events[i]
		t := e.Time
		if t.IsZero() {
			if now.IsZero() {
				now = l.opts.Now()
			}
			t = now
		}
		if t.Before(unixEpoch) || t.After(maxNsTime) {
			return nil, fmt.Errorf("event %d (rule %q): time %v out of range (1970 to 2262)", i, e.Rule, t)
		}
		out[i] = encodedEvent{ns: uint64(t.UnixNano()), val: encodeAlertEvent(e)}
	}
	return out, nil
}

// appendAlertEvents puts evs in the history under keys of their time and
// the bucket's next sequence numbers, and counts them.
func appendAlertEvents(tx *bolt.Tx, evs []encodedEvent) error {
	if len(evs) == 0 {
		return nil
	}
	b := tx.Bucket(bucketAlertHistory)
	for _, e := range evs {
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("history sequence: %w", err)
		}
		if err := b.Put(historyKey(e.ns, seq), e.val); err != nil {
			return fmt.Errorf("put event: %w", err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(keyAlertEvents, u64(getU64(meta, keyAlertEvents)+uint64(len(evs)))); err != nil {
		return fmt.Errorf("count events: %w", err)
	}
	return nil
}

// historyKey is the alert_history key of the event at ns with sequence seq.
func historyKey(ns, seq uint64) []byte {
	k := make([]byte, historyKeyLen)
	binary.BigEndian.PutUint64(k, ns)
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

// alertStateKey is the alert_state key of instance key of rule.
func alertStateKey(rule, key string) []byte {
	k := make([]byte, 0, len(rule)+1+len(key))
	k = append(k, rule...)
	k = append(k, 0)
	return append(k, key...)
}

// clampNs returns t as Unix ns, clamped to [0, MaxInt64].
func clampNs(t time.Time) uint64 {
	switch {
	case t.Before(unixEpoch):
		return 0
	case t.After(maxNsTime):
		return math.MaxInt64
	}
	return uint64(t.UnixNano())
}

// validateAlertRule checks that rule can prefix a state key.
func validateAlertRule(rule string) error {
	switch {
	case rule == "":
		return errors.New("empty rule name")
	case bytes.IndexByte([]byte(rule), 0) >= 0:
		return errors.New("rule name holds a 0x00 byte")
	}
	return nil
}

// validateAlertState checks that s can be stored.
func validateAlertState(s *AlertState) error {
	if err := validateAlertRule(s.Rule); err != nil {
		return fmt.Errorf("state %q/%q: %w", s.Rule, s.Key, err)
	}
	for _, t := range [...]time.Time{s.ActiveAt, s.FiredAt, s.RecoveredAt} {
		if !t.IsZero() && (t.Before(minNsTime) || t.After(maxNsTime)) {
			return fmt.Errorf("state %q/%q: time %v out of range (years 1678 to 2262)", s.Rule, s.Key, t)
		}
	}
	return nil
}

// encodeAlertState encodes s without its Rule and Key, which are the key
// (FORMAT.md, "Alerts"):
//
//	version byte (1)
//	string  state
//	time    activeAt, firedAt, recoveredAt
//	float   value, threshold
//	labels  labels
//	strings exemplars
//	string  notified
func encodeAlertState(s *AlertState) []byte {
	b := make([]byte, 0, 64+labelsSize(s.Labels)+stringsSize(s.Exemplars))
	b = append(b, alertStateVersion)
	b = appendAlertString(b, s.State)
	b = appendAlertTime(b, s.ActiveAt)
	b = appendAlertTime(b, s.FiredAt)
	b = appendAlertTime(b, s.RecoveredAt)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(s.Value))
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(s.Threshold))
	b = appendAlertLabels(b, s.Labels)
	b = appendAlertStrings(b, s.Exemplars)
	return appendAlertString(b, s.Notified)
}

// decodeAlertState decodes a record of encodeAlertState (Rule and Key
// unset).
func decodeAlertState(v []byte) (AlertState, error) {
	var s AlertState
	if len(v) == 0 || v[0] != alertStateVersion {
		return s, errors.New("unknown record version")
	}
	d := &alertDecoder{archDecoder{b: v[1:]}}
	s.State = d.string()
	s.ActiveAt, s.FiredAt, s.RecoveredAt = d.time(), d.time(), d.time()
	s.Value, s.Threshold = d.float(), d.float()
	s.Labels = d.labels()
	s.Exemplars = d.strings()
	s.Notified = d.string()
	if err := d.finish(); err != nil {
		return AlertState{}, err
	}
	return s, nil
}

// encodeAlertEvent encodes e without its Time, which is in the key
// (FORMAT.md, "Alerts"):
//
//	version byte (1)
//	string  kind, rule, key
//	labels  labels
//	string  from, to
//	float   value, threshold
//	strings exemplars
//	string  receiver, status
//	varint  attempt
//	string  outcome, error
//	varint  httpStatus
func encodeAlertEvent(e *AlertEvent) []byte {
	b := make([]byte, 0, 64+len(e.Kind)+len(e.Rule)+len(e.Key)+labelsSize(e.Labels)+len(e.From)+len(e.To)+
		stringsSize(e.Exemplars)+len(e.Receiver)+len(e.Status)+len(e.Outcome)+len(e.Error))
	b = append(b, alertEventVersion)
	b = appendAlertString(b, e.Kind)
	b = appendAlertString(b, e.Rule)
	b = appendAlertString(b, e.Key)
	b = appendAlertLabels(b, e.Labels)
	b = appendAlertString(b, e.From)
	b = appendAlertString(b, e.To)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(e.Value))
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(e.Threshold))
	b = appendAlertStrings(b, e.Exemplars)
	b = appendAlertString(b, e.Receiver)
	b = appendAlertString(b, e.Status)
	b = binary.AppendVarint(b, int64(e.Attempt))
	b = appendAlertString(b, e.Outcome)
	b = appendAlertString(b, e.Error)
	return binary.AppendVarint(b, int64(e.HTTPStatus))
}

// decodeAlertEvent decodes a record of encodeAlertEvent (Time unset).
func decodeAlertEvent(v []byte) (AlertEvent, error) {
	var e AlertEvent
	if len(v) == 0 || v[0] != alertEventVersion {
		return e, errors.New("unknown record version")
	}
	d := &alertDecoder{archDecoder{b: v[1:]}}
	e.Kind, e.Rule, e.Key = d.string(), d.string(), d.string()
	e.Labels = d.labels()
	e.From, e.To = d.string(), d.string()
	e.Value, e.Threshold = d.float(), d.float()
	e.Exemplars = d.strings()
	e.Receiver, e.Status = d.string(), d.string()
	e.Attempt = int(d.varint())
	e.Outcome, e.Error = d.string(), d.string()
	e.HTTPStatus = int(d.varint())
	if err := d.finish(); err != nil {
		return AlertEvent{}, err
	}
	return e, nil
}

// alertEventRuleIs reports whether the event record v is of rule, reading
// only its first fields. A record that does not decode is reported as a
// match, so that decoding it fails loudly.
func alertEventRuleIs(v, rule []byte) bool {
	if len(v) == 0 || v[0] != alertEventVersion {
		return true
	}
	b := v[1:]
	var field []byte
	for range 2 { // kind, rule
		n, sz := binary.Uvarint(b)
		if sz <= 0 || n > uint64(len(b)-sz) {
			return true
		}
		field, b = b[sz:sz+int(n)], b[sz+int(n):]
	}
	return bytes.Equal(field, rule)
}

func appendAlertString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendAlertTime appends 0 for the zero time, else 1 and the varint
// Unix ns.
func appendAlertTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	return binary.AppendVarint(append(b, 1), t.UnixNano())
}

// appendAlertLabels appends the count, then each key and value, in key
// order.
func appendAlertLabels(b []byte, m map[string]string) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendAlertString(b, k)
		b = appendAlertString(b, m[k])
	}
	return b
}

func appendAlertStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendAlertString(b, s)
	}
	return b
}

func labelsSize(m map[string]string) int {
	n := binary.MaxVarintLen32
	for k, v := range m {
		n += 2*binary.MaxVarintLen32 + len(k) + len(v)
	}
	return n
}

func stringsSize(ss []string) int {
	n := binary.MaxVarintLen32
	for _, s := range ss {
		n += binary.MaxVarintLen32 + len(s)
	}
	return n
}

// alertDecoder reads alert records: archDecoder's strings and varints, and
// times, floats, labels and string lists.
type alertDecoder struct{ archDecoder }

func (d *alertDecoder) time() time.Time {
	if d.err != nil {
		return time.Time{}
	}
	if len(d.b) == 0 {
		d.err = errors.New("truncated time")
		return time.Time{}
	}
	flag := d.b[0]
	d.b = d.b[1:]
	switch flag {
	case 0:
		return time.Time{}
	case 1:
		ns := d.varint()
		if d.err != nil {
			return time.Time{}
		}
		return time.Unix(0, ns).UTC()
	}
	d.err = fmt.Errorf("bad time flag %d", flag)
	return time.Time{}
}

func (d *alertDecoder) float() float64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.err = errors.New("truncated float")
		return 0
	}
	f := math.Float64frombits(binary.BigEndian.Uint64(d.b))
	d.b = d.b[8:]
	return f
}

// labels reads a label map; nil when it has none.
func (d *alertDecoder) labels() map[string]string {
	n := d.count(2)
	if d.err != nil || n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := d.string()
		m[k] = d.string()
	}
	return m
}

// strings reads a string list; nil when it is empty.
func (d *alertDecoder) strings() []string {
	n := d.count(1)
	if d.err != nil || n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.string()
	}
	return ss
}

// finish reports the first decoding error, or trailing bytes.
func (d *alertDecoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	return d.err
}
