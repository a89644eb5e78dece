package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/flowscope/flowscope/internal/otlptest"
)

// alertTestState returns a fully populated state of rule/key.
func alertTestState(rule, key string, state string) AlertState {
	zone := time.FixedZone("X", 5*3600+1800)
	return AlertState{
		Rule:        rule,
		Key:         key,
		Labels:      map[string]string{"alertname": rule, "severity": "page", "service": "checkout", "": "empty key", "unicode": "é→✓"},
		State:       state,
		ActiveAt:    t0.Add(123456789 * time.Nanosecond).In(zone),
		FiredAt:     t0.Add(30*time.Second + 987654321),
		RecoveredAt: t0.Add(time.Minute + 1),
		Value:       0.123456789012345,
		Threshold:   250e6,
		Exemplars:   []string{"0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"},
		Notified:    AlertFiring,
	}
}

// alertTestTransition returns a transition event of rule/key at t.
func alertTestTransition(rule, key string, t time.Time, from, to string) AlertEvent {
	return AlertEvent{
		Time: t, Kind: AlertEventTransition, Rule: rule, Key: key,
		Labels:    map[string]string{"alertname": rule, "source": "frontend", "target": "checkout"},
		From:      from,
		To:        to,
		Value:     312.5e6,
		Threshold: 250e6,
		Exemplars: []string{"0123456789abcdef0123456789abcdef"},
	}
}

// alertTestDelivery returns a delivery event of rule/key at t.
func alertTestDelivery(rule, key string, t time.Time) AlertEvent {
	return AlertEvent{
		Time: t, Kind: AlertEventDelivery, Rule: rule, Key: key,
		Labels:     map[string]string{"alertname": rule},
		Receiver:   "webhook http://example.test/hook",
		Status:     "firing",
		Attempt:    3,
		Outcome:    "retrying",
		Error:      "Post \"http://example.test/hook\": connection refused",
		HTTPStatus: 503,
	}
}

// normState and normEvent make values comparable with reflect.DeepEqual:
// times in UTC without a monotonic reading.
func normState(s AlertState) AlertState {
	s.ActiveAt, s.FiredAt, s.RecoveredAt = s.ActiveAt.UTC(), s.FiredAt.UTC(), s.RecoveredAt.UTC()
	return s
}

func normEvent(e AlertEvent) AlertEvent {
	e.Time = e.Time.UTC()
	return e
}

func checkStates(t *testing.T, db *DB, want ...AlertState) {
	t.Helper()
	got, err := db.AlertStates()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d states, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if w := normState(want[i]); !reflect.DeepEqual(got[i], w) {
			t.Errorf("state %d:\n got %+v\nwant %+v", i, got[i], w)
		}
	}
}

func checkEvents(t *testing.T, got []AlertEvent, want ...AlertEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range want {
		if w := normEvent(want[i]); !reflect.DeepEqual(got[i], w) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i], w)
		}
	}
}

func allHistory(t *testing.T, db *DB) []AlertEvent {
	t.Helper()
	evs, err := db.AlertHistory(context.Background(), AlertHistoryQuery{Limit: maxAlertHistoryLimit})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func alertEventCount(t *testing.T, db *DB) uint64 {
	t.Helper()
	var n uint64
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		n = getU64(tx.Bucket(bucketMeta), keyAlertEvents)
		if k := uint64(tx.Bucket(bucketAlertHistory).Stats().KeyN); k != n {
			return fmt.Errorf("event count %d, bucket holds %d", n, k)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAlertRoundTrip(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, nil)
	firing := alertTestState("CheckoutSlow", "source=frontend\x00target=checkout", AlertFiring)
	pending := alertTestState("CheckoutSlow", "service=a", AlertPending)
	pending.FiredAt, pending.RecoveredAt, pending.Notified = time.Time{}, time.Time{}, ""
	pending.Labels, pending.Exemplars = nil, nil // empty ones come back nil
	other := alertTestState("ErrorsHigh", "", AlertFiring)
	other.Value, other.Threshold = math.Inf(1), -0.05
	events := []AlertEvent{
		alertTestTransition("CheckoutSlow", firing.Key, t0.Add(time.Nanosecond), AlertInactive, AlertPending),
		alertTestTransition("CheckoutSlow", firing.Key, t0.Add(30*time.Second+7), AlertPending, AlertFiring),
		alertTestDelivery("CheckoutSlow", firing.Key, t0.Add(31*time.Second)),
		{Time: t0.Add(32 * time.Second), Kind: AlertEventTransition, Rule: "ErrorsHigh"}, // sparse
	}
	// Upserted out of order; AlertStates sorts by (Rule, Key).
	if err := db.SaveAlerts([]AlertState{other, firing, pending}, nil, events); err != nil {
		t.Fatal(err)
	}
	checkStates(t, db, pending, firing, other)
	checkEvents(t, allHistory(t, db), events[3], events[2], events[1], events[0])

	// Replace one state, delete another (and one that does not exist).
	firing2 := firing
	firing2.Value, firing2.Notified = 400e6, ""
	resolved := alertTestTransition("ErrorsHigh", "", t0.Add(time.Minute), AlertFiring, AlertInactive)
	if err := db.SaveAlerts([]AlertState{firing2}, []AlertStateKey{{"ErrorsHigh", ""}, {"Nope", "x"}}, []AlertEvent{resolved}); err != nil {
		t.Fatal(err)
	}
	checkStates(t, db, pending, firing2)
	if err := db.AppendAlertEvents([]AlertEvent{alertTestDelivery("ErrorsHigh", "", t0.Add(2*time.Minute))}); err != nil {
		t.Fatal(err)
	}
	wantHist := []AlertEvent{alertTestDelivery("ErrorsHigh", "", t0.Add(2*time.Minute)), resolved, events[3], events[2], events[1], events[0]}
	checkEvents(t, allHistory(t, db), wantHist...)
	if n := alertEventCount(t, db); n != 6 {
		t.Fatalf("event count %d", n)
	}

	// Everything survives a restart.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, nil)
	checkStates(t, db, pending, firing2)
	checkEvents(t, allHistory(t, db), wantHist...)
	if n := alertEventCount(t, db); n != 6 {
		t.Fatalf("event count after reopen %d", n)
	}
}

func TestSaveAlertsAtomic(t *testing.T) {
	now := t0
	db := openTest(t, t.TempDir(), &now)
	st := alertTestState("R", "k", AlertPending)
	ev := alertTestTransition("R", "k", time.Time{}, AlertInactive, AlertPending)
	events := []AlertEvent{ev}

	// A failing transaction stores nothing of the cycle.
	db.alertLog.failTx = func() error { return fmt.Errorf("write: %w", syscall.ENOSPC) }
	err := db.SaveAlerts([]AlertState{st}, nil, events)
	if !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("save on a full disk: %v", err)
	}
	if err := db.Ready(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("ready after a full disk: %v", err)
	}
	db.alertLog.failTx = func() error { return errors.New("boom") }
	if err := db.AppendAlertEvents(events); err == nil || errors.Is(err, ErrDiskFull) {
		t.Fatalf("append with a failing transaction: %v", err)
	}
	checkStates(t, db)
	checkEvents(t, allHistory(t, db))
	db.alertLog.failTx = nil
	db.diskFull.Store(false)

	// The state and its event are both visible; the zero time became the
	// store's clock and the caller's slice is unchanged.
	if err := db.SaveAlerts([]AlertState{st}, nil, events); err != nil {
		t.Fatal(err)
	}
	if !events[0].Time.IsZero() {
		t.Fatal("SaveAlerts modified the caller's event")
	}
	checkStates(t, db, st)
	ev.Time = now
	checkEvents(t, allHistory(t, db), ev)

	// Nothing to save: no transaction (a failing one would fail).
	db.alertLog.failTx = func() error { return errors.New("transaction opened") }
	if err := db.SaveAlerts(nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendAlertEvents(nil); err != nil {
		t.Fatal(err)
	}
}

func TestSaveAlertsInvalid(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	good := alertTestState("R", "k", AlertFiring)
	tests := []struct {
		name    string
		upserts []AlertState
		deletes []AlertStateKey
		events  []AlertEvent
	}{
		{name: "empty rule", upserts: []AlertState{{Key: "k", State: AlertFiring}}},
		{name: "rule with 0x00", upserts: []AlertState{{Rule: "a\x00b", State: AlertFiring}}},
		{name: "delete empty rule", deletes: []AlertStateKey{{Key: "k"}}},
		{name: "state time out of range", upserts: []AlertState{{Rule: "R", ActiveAt: time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC)}}},
		{name: "event before 1970", events: []AlertEvent{{Time: time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), Rule: "R"}}},
		{name: "event after 2262", events: []AlertEvent{{Time: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), Rule: "R"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The valid state saved with the invalid item is not stored.
			if err := db.SaveAlerts(append([]AlertState{good}, tc.upserts...), tc.deletes, tc.events); err == nil {
				t.Fatal("no error")
			}
			checkStates(t, db)
		})
	}
	if err := db.AppendAlertEvents([]AlertEvent{{Time: time.Unix(-1, 0)}}); err == nil {
		t.Fatal("append of an event before 1970: no error")
	}
	checkEvents(t, allHistory(t, db))
}

func TestAlertHistoryQuery(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	// Events of rules A and B; three at the same time (t0+20s) in two
	// calls, and one appended after later ones with an earlier time.
	var all []AlertEvent
	add := func(evs ...AlertEvent) {
		t.Helper()
		if err := db.AppendAlertEvents(evs); err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
	}
	ev := func(rule string, s int, key string) AlertEvent {
		return alertTestTransition(rule, key, at(s), AlertPending, AlertFiring)
	}
	add(ev("A", 0, "a0"), ev("B", 10, "b10"), ev("A", 20, "a20-1"), ev("B", 20, "b20"))
	add(ev("A", 20, "a20-2"), ev("A", 30, "a30"), ev("B", 40, "b40"))
	add(ev("A", 5, "a5-late"))
	keys := func(evs []AlertEvent) []string {
		out := []string{}
		for _, e := range evs {
			out = append(out, e.Key)
		}
		return out
	}
	tests := []struct {
		name string
		q    AlertHistoryQuery
		want []string
	}{
		{"all newest first", AlertHistoryQuery{}, []string{"b40", "a30", "a20-2", "b20", "a20-1", "b10", "a5-late", "a0"}},
		{"rule A", AlertHistoryQuery{Rule: "A"}, []string{"a30", "a20-2", "a20-1", "a5-late", "a0"}},
		{"rule B", AlertHistoryQuery{Rule: "B"}, []string{"b40", "b20", "b10"}},
		{"unknown rule", AlertHistoryQuery{Rule: "C"}, []string{}},
		{"rule prefix is not a match", AlertHistoryQuery{Rule: "AB"}, []string{}},
		{"start inclusive", AlertHistoryQuery{Start: at(20)}, []string{"b40", "a30", "a20-2", "b20", "a20-1"}},
		{"end inclusive", AlertHistoryQuery{End: at(20)}, []string{"a20-2", "b20", "a20-1", "b10", "a5-late", "a0"}},
		{"start and end", AlertHistoryQuery{Start: at(5), End: at(20), Rule: "A"}, []string{"a20-2", "a20-1", "a5-late"}},
		{"one instant", AlertHistoryQuery{Start: at(20), End: at(20)}, []string{"a20-2", "b20", "a20-1"}},
		{"end between events", AlertHistoryQuery{End: at(20).Add(-time.Nanosecond)}, []string{"b10", "a5-late", "a0"}},
		{"end before everything", AlertHistoryQuery{End: at(-1)}, []string{}},
		{"end before 1970", AlertHistoryQuery{End: time.Unix(-5, 0)}, []string{}},
		{"start after everything", AlertHistoryQuery{Start: at(41)}, []string{}},
		{"start before 1970", AlertHistoryQuery{Start: time.Unix(-5, 0), End: at(5)}, []string{"a5-late", "a0"}},
		{"end far in the future", AlertHistoryQuery{End: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), Limit: 1}, []string{"b40"}},
		{"end before start", AlertHistoryQuery{Start: at(30), End: at(10)}, []string{}},
		{"limit", AlertHistoryQuery{Limit: 3}, []string{"b40", "a30", "a20-2"}},
		{"limit with rule", AlertHistoryQuery{Rule: "B", Limit: 2}, []string{"b40", "b20"}},
		{"limit with range", AlertHistoryQuery{Start: at(10), End: at(30), Limit: 2}, []string{"a30", "a20-2"}},
		{"negative limit is the default", AlertHistoryQuery{Limit: -1}, []string{"b40", "a30", "a20-2", "b20", "a20-1", "b10", "a5-late", "a0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.AlertHistory(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(keys(got), tc.want) {
				t.Fatalf("got %q, want %q", keys(got), tc.want)
			}
		})
	}
	got, _ := db.AlertHistory(context.Background(), AlertHistoryQuery{Rule: "A", Limit: 1})
	checkEvents(t, got, all[5])

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.AlertHistory(ctx, AlertHistoryQuery{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled query: %v", err)
	}
}

func TestAlertHistoryLimits(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	evs := make([]AlertEvent, maxAlertHistoryLimit+50)
	for i := range evs {
		evs[i] = AlertEvent{Time: t0.Add(time.Duration(i) * time.Millisecond), Kind: AlertEventDelivery, Rule: "R", Attempt: i}
	}
	if err := db.AppendAlertEvents(evs); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ limit, want int }{
		{0, defaultAlertHistoryLimit},
		{-3, defaultAlertHistoryLimit},
		{1, 1},
		{maxAlertHistoryLimit, maxAlertHistoryLimit},
		{maxAlertHistoryLimit + 1, maxAlertHistoryLimit},
		{math.MaxInt, maxAlertHistoryLimit},
	} {
		got, err := db.AlertHistory(context.Background(), AlertHistoryQuery{Limit: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want || got[0].Attempt != len(evs)-1 || got[len(got)-1].Attempt != len(evs)-tc.want {
			t.Fatalf("limit %d: %d events, first %d, last %d", tc.limit, len(got), got[0].Attempt, got[len(got)-1].Attempt)
		}
	}
}

func TestAlertRetention(t *testing.T) {
	now := t0
	db, err := Open(t.TempDir(), Options{
		Retention: time.Hour, CheckpointInterval: time.Hour, RetentionInterval: time.Hour,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A state active for longer than the retention, its old history and a
	// recent event. More old events than one retention transaction takes.
	st := alertTestState("R", "k", AlertFiring)
	st.ActiveAt = t0.Add(-48 * time.Hour)
	old := make([]AlertEvent, 2*retentionBatch+10)
	for i := range old {
		old[i] = alertTestTransition("R", fmt.Sprint(i), t0.Add(-2*time.Hour+time.Duration(i)*time.Millisecond), AlertPending, AlertFiring)
	}
	edge := alertTestTransition("R", "edge", t0.Add(-time.Hour), AlertFiring, AlertInactive) // at the cutoff: kept
	recent := alertTestDelivery("R", "k", t0.Add(-time.Minute))
	if err := db.SaveAlerts([]AlertState{st}, nil, append(old, edge, recent)); err != nil {
		t.Fatal(err)
	}
	if err := db.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	checkStates(t, db, st)
	checkEvents(t, allHistory(t, db), recent, edge)
	if n := alertEventCount(t, db); n != 2 {
		t.Fatalf("event count %d", n)
	}
	// The state is never expired, however old.
	now = t0.Add(30 * 24 * time.Hour)
	if err := db.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	checkStates(t, db, st)
	checkEvents(t, allHistory(t, db))
	if n := alertEventCount(t, db); n != 0 {
		t.Fatalf("event count %d", n)
	}
}

func TestAlertHistoryCap(t *testing.T) {
	now := t0
	db := openTest(t, t.TempDir(), &now)
	added := 0
	for _, tc := range []struct {
		max       uint64
		add       int
		wantFirst int // Attempt (insertion number) of the oldest event kept
		wantN     int
	}{
		{max: 5, add: 12, wantFirst: 7, wantN: 5},
		{max: 5, add: 3, wantFirst: 10, wantN: 5},
		{max: 100, add: 3, wantFirst: 10, wantN: 8},
		// More to delete than one retention transaction takes.
		{max: 3, add: 2*retentionBatch + 1, wantFirst: 18 + 2*retentionBatch + 1 - 3, wantN: 3},
	} {
		db.alertLog.historyMax = tc.max
		evs := make([]AlertEvent, tc.add)
		for i := range evs {
			// All at the store's clock: ordered by insertion.
			evs[i] = AlertEvent{Kind: AlertEventDelivery, Rule: "R", Attempt: added}
			added++
		}
		if err := db.AppendAlertEvents(evs); err != nil {
			t.Fatal(err)
		}
		if err := db.ApplyRetention(); err != nil {
			t.Fatal(err)
		}
		got := allHistory(t, db)
		if len(got) != tc.wantN || alertEventCount(t, db) != uint64(tc.wantN) {
			t.Fatalf("max %d: %d events kept, want %d", tc.max, len(got), tc.wantN)
		}
		if got[0].Attempt != added-1 || got[len(got)-1].Attempt != tc.wantFirst {
			t.Fatalf("max %d: kept events %d to %d, want %d to %d", tc.max,
				got[len(got)-1].Attempt, got[0].Attempt, tc.wantFirst, added-1)
		}
	}
}

func TestAlertSchemaUpgradeFromV1(t *testing.T) {
	dir := t.TempDir()
	now := t0.Add(time.Hour)
	db := openTest(t, dir, &now)
	ds := otlptest.Generate(otlptest.Options{Traces: 5, Services: 2, SpansPerTrace: 2, Start: t0})
	writeDataset(t, db, ds, 2)
	// Make it a version-1 file: schema 1, no alert or synthetic-run
	// buckets or keys.
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketAlertState, bucketAlertHistory,
			bucketSynthRuns, bucketSynthByID, bucketSynthByCorr, bucketSynthByTime} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		for _, k := range [][]byte{keyAlertEvents, keySynthRuns} {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		return meta.Put(keySchema, u64(1))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openTest(t, dir, &now)
	var schema uint64
	db.bolt.View(func(tx *bolt.Tx) error {
		schema = getU64(tx.Bucket(bucketMeta), keySchema)
		return nil
	})
	// Upgraded straight to the current version (3: alerts and synthetic
	// runs).
	if schema != SchemaVersion || SchemaVersion != 4 {
		t.Fatalf("schema after upgrade: %d (SchemaVersion %d)", schema, SchemaVersion)
	}
	// The old data is still there, and alerts and synthetic runs work.
	var id TraceID
	copy(id[:], ds.Spans[0].Span.TraceId)
	if _, err := db.Trace(context.Background(), id); err != nil {
		t.Fatalf("trace after upgrade: %v", err)
	}
	checkStates(t, db)
	checkEvents(t, allHistory(t, db))
	st := alertTestState("R", "k", AlertFiring)
	ev := alertTestTransition("R", "k", t0, AlertPending, AlertFiring)
	if err := db.SaveAlerts([]AlertState{st}, nil, []AlertEvent{ev}); err != nil {
		t.Fatal(err)
	}
	run := synthTestRun("c", "r1", t0)
	saveRun(t, db, run)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, &now)
	checkStates(t, db, st)
	checkEvents(t, allHistory(t, db), ev)
	checkRuns(t, allRuns(t, db), run)
}

func TestAlertSchemaRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"newer version", u64(SchemaVersion + 1)},
		{"version 0", u64(0)},
		{"garbage", []byte("v2")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			// A file without the alert and synthetic-run buckets: a
			// refused open must not create them.
			err = db.bolt.Update(func(tx *bolt.Tx) error {
				for _, b := range [][]byte{bucketAlertHistory, bucketSynthRuns, bucketSynthByID} {
					if err := tx.DeleteBucket(b); err != nil {
						return err
					}
				}
				return tx.Bucket(bucketMeta).Put(keySchema, tc.value)
			})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			if _, err := Open(dir, Options{}); !errors.Is(err, ErrSchema) {
				t.Fatalf("open: %v", err)
			}
			bdb, err := bolt.Open(dir+"/"+FileName, 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer bdb.Close()
			bdb.View(func(tx *bolt.Tx) error {
				if v := tx.Bucket(bucketMeta).Get(keySchema); string(v) != string(tc.value) {
					t.Errorf("schema rewritten to %x", v)
				}
				for _, b := range [][]byte{bucketAlertHistory, bucketSynthRuns, bucketSynthByID} {
					if tx.Bucket(b) != nil {
						t.Errorf("refused open created bucket %s", b)
					}
				}
				return nil
			})
		})
	}
}

func TestAlertsAfterClose(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	st := alertTestState("R", "k", AlertFiring)
	ev := alertTestTransition("R", "k", t0, AlertPending, AlertFiring)
	checks := map[string]error{
		"SaveAlerts":        db.SaveAlerts([]AlertState{st}, nil, []AlertEvent{ev}),
		"SaveAlerts empty":  db.SaveAlerts(nil, nil, nil),
		"AppendAlertEvents": db.AppendAlertEvents([]AlertEvent{ev}),
	}
	_, checks["AlertStates"] = db.AlertStates()
	_, checks["AlertHistory"] = db.AlertHistory(context.Background(), AlertHistoryQuery{})
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
	// Past the closed check, bbolt's error for a closed file is ErrClosed
	// too (a call racing with Close).
	if err := db.alertUpdate("x", func(*bolt.Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("update on a closed file: %v", err)
	}
}

// TestAlertsWithIngest saves alerts while spans are written, checkpointed
// and expired: alert transactions share bbolt's writer with those loops
// and must neither deadlock with them nor disturb them.
func TestAlertsWithIngest(t *testing.T) {
	now := t0.Add(time.Hour)
	var clock sync.Mutex
	db, err := Open(t.TempDir(), Options{
		CheckpointInterval: 20 * time.Millisecond, RetentionInterval: 30 * time.Millisecond,
		RollupFlushInterval: 10 * time.Millisecond,
		Now:                 func() time.Time { clock.Lock(); defer clock.Unlock(); return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ds := otlptest.Generate(otlptest.Options{Traces: 400, Services: 3, SpansPerTrace: 3, Start: t0})
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		writeDataset(t, db, ds, 4)
	}()
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			k := fmt.Sprint(i % 7)
			st := alertTestState("R", k, AlertFiring)
			if err := db.SaveAlerts([]AlertState{st}, []AlertStateKey{{"R", fmt.Sprint((i + 3) % 7)}},
				[]AlertEvent{alertTestTransition("R", k, time.Time{}, AlertPending, AlertFiring)}); err != nil {
				t.Error(err)
				return
			}
			if _, err := db.AlertHistory(context.Background(), AlertHistoryQuery{Rule: "R", Limit: 5}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := db.ApplyRetention(); err != nil {
				t.Error(err)
				return
			}
			if _, err := db.AlertStates(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	timeout := time.AfterFunc(2*time.Minute, func() { panic("alerts with ingest: deadlock") })
	defer timeout.Stop()
	// Stop the alert writers once the spans are in.
	for {
		got, err := db.FindTraces(context.Background(), TraceQuery{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 400 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(done)
	wg.Wait()
	if n := alertEventCount(t, db); n == 0 {
		t.Fatal("no alert events saved")
	}
}

func TestAlertRecordDecodeTruncated(t *testing.T) {
	st := alertTestState("R", "k", AlertFiring)
	ev := alertTestDelivery("R", "k", t0)
	ev.Exemplars = []string{"x"}
	for _, tc := range []struct {
		name   string
		rec    []byte
		decode func([]byte) error
	}{
		{"state", encodeAlertState(&st), func(b []byte) error { _, err := decodeAlertState(b); return err }},
		{"event", encodeAlertEvent(&ev), func(b []byte) error { _, err := decodeAlertEvent(b); return err }},
	} {
		if err := tc.decode(tc.rec); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for n := range len(tc.rec) {
			if err := tc.decode(tc.rec[:n]); err == nil {
				t.Errorf("%s truncated to %d bytes: no error", tc.name, n)
			}
		}
		if err := tc.decode(append(append([]byte(nil), tc.rec...), 0)); err == nil {
			t.Errorf("%s with a trailing byte: no error", tc.name)
		}
		bad := append([]byte(nil), tc.rec...)
		bad[0] = 9
		if err := tc.decode(bad); err == nil {
			t.Errorf("%s of version 9: no error", tc.name)
		}
	}
}

// BenchmarkSaveAlerts measures one evaluation cycle with 10 transitions:
// 10 states upserted (or deleted, for resolutions) and 10 history events,
// in one durable transaction.
func BenchmarkSaveAlerts(b *testing.B) {
	db, err := Open(b.TempDir(), Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var ups []AlertState
		var dels []AlertStateKey
		evs := make([]AlertEvent, 0, 10)
		for j := range 10 {
			key := fmt.Sprintf("source=svc%d\x00target=svc%d", (i*10+j)%500, j)
			if i%3 == 2 {
				dels = append(dels, AlertStateKey{"CheckoutSlow", key})
				evs = append(evs, alertTestTransition("CheckoutSlow", key, time.Time{}, AlertFiring, AlertInactive))
				continue
			}
			ups = append(ups, alertTestState("CheckoutSlow", key, AlertFiring))
			evs = append(evs, alertTestTransition("CheckoutSlow", key, time.Time{}, AlertPending, AlertFiring))
		}
		if err := db.SaveAlerts(ups, dels, evs); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/save")
}
