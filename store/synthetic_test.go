package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/internal/otlptest"
)

// synthTestRun returns a fully populated run: a failed 3-step run whose
// second step failed and third was skipped.
func synthTestRun(check, runID string, start time.Time) SyntheticRun {
	return SyntheticRun{
		Check:         check,
		RunID:         runID,
		CorrelationID: "corr-" + runID,
		TraceID:       "0123456789abcdef0123456789abcdef",
		Trigger:       "schedule",
		Start:         start,
		Duration:      812*time.Millisecond + 7,
		OK:            false,
		Error:         `step "cart": status 503, want 200`,
		Attempt:       2,
		Steps: []SyntheticStep{
			{
				Name: "login", Method: "POST", URL: "http://shop.local:8080/login?user=***",
				Status: 200, OK: true, SpanID: "0123456789abcdef",
				Timings: SyntheticTimings{DNS: 1500 * time.Microsecond, Connect: 2 * time.Millisecond, TLS: 0,
					FirstByte: 40 * time.Millisecond, Total: 41*time.Millisecond + 3},
				Assertions: []SyntheticAssertion{
					{Type: "status", Expected: "200", Actual: "200", OK: true},
					{Type: "jsonpath_equals", Target: "$.ok", Expected: "true", Actual: "true", OK: true},
				},
			},
			{
				Name: "cart", Method: "GET", URL: "http://shop.local:8080/cart",
				Status: 503, OK: false, ContinueOnFailure: false, SpanID: "fedcba9876543210",
				Timings: SyntheticTimings{Connect: time.Millisecond, FirstByte: 700 * time.Millisecond, Total: 701 * time.Millisecond},
				Assertions: []SyntheticAssertion{
					{Type: "status_in", Expected: "200, 201", Actual: "503", OK: false},
					{Type: "latency_below", Expected: "< 500ms", Actual: "701ms", OK: false},
					{Type: "header", Target: "Content-Type", Expected: "application/json", Actual: "text/html; é→✓"},
				},
				Error: "status 503, want 200 or 201",
				Body:  "<html>Service Unavailable</html>",
			},
			{Name: "checkout", Method: "POST", URL: "http://shop.local:8080/checkout", Skipped: true, ContinueOnFailure: true},
		},
	}
}

// normRun makes a run comparable with reflect.DeepEqual: Start in UTC
// without a monotonic reading, empty lists nil.
func normRun(r SyntheticRun) SyntheticRun {
	r.Start = r.Start.UTC().Round(0)
	if len(r.Steps) == 0 {
		r.Steps = nil
	}
	r.Steps = slices.Clone(r.Steps)
	for i := range r.Steps {
		if len(r.Steps[i].Assertions) == 0 {
			r.Steps[i].Assertions = nil
		}
	}
	return r
}

func checkRuns(t *testing.T, got []SyntheticRun, want ...SyntheticRun) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d runs, want %d: %v", len(got), len(want), runIDs(got))
	}
	for i := range want {
		if w := normRun(want[i]); !reflect.DeepEqual(got[i], w) {
			t.Errorf("run %d:\n got %+v\nwant %+v", i, got[i], w)
		}
	}
}

func runIDs(runs []SyntheticRun) []string {
	out := []string{}
	for _, r := range runs {
		out = append(out, r.RunID)
	}
	return out
}

func saveRun(t testing.TB, db *DB, r SyntheticRun) {
	t.Helper()
	if err := db.SaveSyntheticRun(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// saveRunsBulk stores validated runs in one transaction (as
// SaveSyntheticRun stores one), for tests and benchmarks that need many.
func saveRunsBulk(t testing.TB, db *DB, runs []SyntheticRun) {
	t.Helper()
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for i := range runs {
			r := &runs[i]
			if err := validateSyntheticRun(r); err != nil {
				return err
			}
			err := putSyntheticRun(tx, r.Check, r.CorrelationID, r.RunID, uint64(r.Start.UnixNano()),
				encodeSyntheticRun(r), synthSummary(r.Duration, r.OK))
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// synthCounts returns the number of keys of each synthetic bucket and the
// meta count, and fails unless they agree.
func synthCounts(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	err := db.bolt.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketSynthByID).Stats().KeyN
		for _, b := range [][]byte{bucketSynthRuns, bucketSynthByTime} {
			if k := tx.Bucket(b).Stats().KeyN; k != n {
				return fmt.Errorf("%s holds %d keys, synthetic_byid %d", b, k, n)
			}
		}
		corr := 0
		if err := tx.Bucket(bucketSynthByID).ForEach(func(k, v []byte) error {
			if _, c, _, err := decodeSynthHead(v); err != nil || c != "" {
				corr++
			}
			return nil
		}); err != nil {
			return err
		}
		if k := tx.Bucket(bucketSynthByCorr).Stats().KeyN; k != corr {
			return fmt.Errorf("synthetic_bycorr holds %d keys, want %d", k, corr)
		}
		if m := getU64(tx.Bucket(bucketMeta), keySynthRuns); m != uint64(n) {
			return fmt.Errorf("run count %d, buckets hold %d", m, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func allRuns(t *testing.T, db *DB) []SyntheticRun {
	t.Helper()
	runs, err := db.SyntheticRuns(context.Background(), SyntheticRunQuery{Limit: maxSyntheticLimit})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

func TestSyntheticRunRoundTrip(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, nil)
	ctx := context.Background()
	zone := time.FixedZone("X", 5*3600+1800)
	full := synthTestRun("checkout-journey", "00000000000000a1", t0.Add(123456789).In(zone))
	passed := SyntheticRun{ // sparse: no steps, no correlation ID
		Check: "checkout-journey", RunID: "00000000000000a2", Start: t0.Add(30 * time.Second),
		Duration: 0, OK: true, Trigger: "manual", Attempt: 1,
	}
	other := synthTestRun("login", "00000000000000b1", t0.Add(10*time.Second))
	other.Steps = other.Steps[:1]
	other.Steps[0].Assertions = []SyntheticAssertion{} // read back nil
	other.OK, other.Error = true, ""
	for _, r := range []SyntheticRun{full, passed, other} {
		saveRun(t, db, r)
	}
	check := func(phase string) {
		t.Helper()
		for _, r := range []SyntheticRun{full, passed, other} {
			got, err := db.SyntheticRun(ctx, r.Check, r.RunID)
			if err != nil {
				t.Fatalf("%s: %v", phase, err)
			}
			checkRuns(t, []SyntheticRun{got}, r)
		}
		checkRuns(t, allRuns(t, db), passed, other, full)
		if n := synthCounts(t, db); n != 3 {
			t.Fatalf("%s: %d runs stored", phase, n)
		}
		// A run is found under its own check only.
		for _, tc := range []struct{ check, runID string }{
			{"login", full.RunID}, {"checkout-journey", "nope"}, {"", full.RunID}, {"checkout-journey", ""},
		} {
			if _, err := db.SyntheticRun(ctx, tc.check, tc.runID); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: run %q of %q: %v, want ErrNotFound", phase, tc.runID, tc.check, err)
			}
		}
	}
	check("saved")
	// Everything survives a restart.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, nil)
	check("reopened")
}

func TestSyntheticRunsQuery(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	run := func(check, id string, s int) SyntheticRun {
		return SyntheticRun{Check: check, RunID: id, Start: at(s), Duration: time.Second, OK: true}
	}
	// Checks whose names prefix each other; two runs at the same time.
	for _, r := range []SyntheticRun{
		run("a", "a0", 0), run("b", "b10", 10), run("a", "a20-2", 20), run("a", "a20-1", 20),
		run("ab", "ab20", 20), run("a", "a30", 30), run("b", "b40", 40), run("a\x01b", "ax40", 40), run("a", "a5", 5),
	} {
		saveRun(t, db, r)
	}
	tests := []struct {
		name string
		q    SyntheticRunQuery
		want []string
	}{
		{"all newest first", SyntheticRunQuery{}, []string{"b40", "ax40", "a30", "ab20", "a20-2", "a20-1", "b10", "a5", "a0"}},
		{"check a", SyntheticRunQuery{Check: "a"}, []string{"a30", "a20-2", "a20-1", "a5", "a0"}},
		{"check ab", SyntheticRunQuery{Check: "ab"}, []string{"ab20"}},
		{"check b", SyntheticRunQuery{Check: "b"}, []string{"b40", "b10"}},
		{"check with 0x01", SyntheticRunQuery{Check: "a\x01b"}, []string{"ax40"}},
		{"check with 0x00", SyntheticRunQuery{Check: "a\x00"}, []string{}},
		{"unknown check", SyntheticRunQuery{Check: "c"}, []string{}},
		{"start inclusive", SyntheticRunQuery{Check: "a", Start: at(20)}, []string{"a30", "a20-2", "a20-1"}},
		{"end inclusive", SyntheticRunQuery{Check: "a", End: at(20)}, []string{"a20-2", "a20-1", "a5", "a0"}},
		{"one instant", SyntheticRunQuery{Start: at(20), End: at(20)}, []string{"ab20", "a20-2", "a20-1"}},
		{"end between runs", SyntheticRunQuery{Check: "a", End: at(20).Add(-1)}, []string{"a5", "a0"}},
		{"start and end", SyntheticRunQuery{Start: at(5), End: at(30)}, []string{"a30", "ab20", "a20-2", "a20-1", "b10", "a5"}},
		{"end before everything", SyntheticRunQuery{End: at(-1)}, []string{}},
		{"end before 1970", SyntheticRunQuery{End: time.Unix(-5, 0)}, []string{}},
		{"start after everything", SyntheticRunQuery{Check: "b", Start: at(41)}, []string{}},
		{"start before 1970", SyntheticRunQuery{Check: "a", Start: time.Unix(-5, 0), End: at(5)}, []string{"a5", "a0"}},
		{"end far in the future", SyntheticRunQuery{Check: "b", End: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{"b40", "b10"}},
		{"end before start", SyntheticRunQuery{Start: at(30), End: at(10)}, []string{}},
		{"limit", SyntheticRunQuery{Limit: 2}, []string{"b40", "ax40"}},
		{"limit with check", SyntheticRunQuery{Check: "a", Limit: 3}, []string{"a30", "a20-2", "a20-1"}},
		{"limit with range", SyntheticRunQuery{Check: "a", Start: at(1), End: at(29), Limit: 2}, []string{"a20-2", "a20-1"}},
		{"negative limit is the default", SyntheticRunQuery{Check: "b", Limit: -1}, []string{"b40", "b10"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.SyntheticRuns(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(runIDs(got), tc.want) {
				t.Fatalf("got %q, want %q", runIDs(got), tc.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.SyntheticRuns(ctx, SyntheticRunQuery{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled query: %v", err)
	}
}

func TestSyntheticRunsLimits(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	runs := make([]SyntheticRun, maxSyntheticLimit+50)
	for i := range runs {
		runs[i] = SyntheticRun{Check: "c", RunID: fmt.Sprintf("%016x", i), CorrelationID: "same",
			Start: t0.Add(time.Duration(i) * time.Second), Attempt: i}
	}
	saveRunsBulk(t, db, runs)
	for _, tc := range []struct{ limit, want int }{
		{0, defaultSyntheticLimit},
		{-3, defaultSyntheticLimit},
		{1, 1},
		{maxSyntheticLimit, maxSyntheticLimit},
		{maxSyntheticLimit + 1, maxSyntheticLimit},
		{math.MaxInt, maxSyntheticLimit},
	} {
		for _, check := range []string{"c", ""} {
			got, err := db.SyntheticRuns(context.Background(), SyntheticRunQuery{Check: check, Limit: tc.limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want || got[0].Attempt != len(runs)-1 || got[len(got)-1].Attempt != len(runs)-tc.want {
				t.Fatalf("limit %d, check %q: %d runs, first %d, last %d", tc.limit, check, len(got), got[0].Attempt, got[len(got)-1].Attempt)
			}
		}
		// By correlation, oldest first.
		got, err := db.SyntheticRunsByCorrelation(context.Background(), "same", tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want || got[0].Attempt != 0 || got[len(got)-1].Attempt != tc.want-1 {
			t.Fatalf("correlation limit %d: %d runs, first %d, last %d", tc.limit, len(got), got[0].Attempt, got[len(got)-1].Attempt)
		}
	}
}

func TestSyntheticRunsByCorrelation(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	ctx := context.Background()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	run := func(check, id, corr string, s int) SyntheticRun {
		return SyntheticRun{Check: check, RunID: id, CorrelationID: corr, Start: at(s), OK: true}
	}
	// Saved out of time order; "c1" prefixes "c10"; one run without an ID.
	for _, r := range []SyntheticRun{
		run("a", "r3", "c1", 30), run("b", "r1", "c1", 10), run("a", "r2", "c10", 20),
		run("a", "r4", "", 40), run("b", "r0", "c1", 10), run("a", "r5", "c1 ", 50),
	} {
		saveRun(t, db, r)
	}
	for _, tc := range []struct {
		id    string
		limit int
		want  []string
	}{
		{"c1", 0, []string{"r0", "r1", "r3"}},
		{"c1", 2, []string{"r0", "r1"}},
		{"c10", 0, []string{"r2"}},
		{"c1 ", 0, []string{"r5"}},
		{"c", 0, []string{}},
		{"", 0, []string{}},
		{"c1\x00", 0, []string{}},
	} {
		got, err := db.SyntheticRunsByCorrelation(ctx, tc.id, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(runIDs(got), tc.want) {
			t.Errorf("correlation %q limit %d: got %q, want %q", tc.id, tc.limit, runIDs(got), tc.want)
		}
	}
	got, _ := db.SyntheticRunsByCorrelation(ctx, "c10", 0)
	checkRuns(t, got, run("a", "r2", "c10", 20))
}

func TestSaveSyntheticRunInvalid(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	good := func() SyntheticRun { return synthTestRun("c", "r1", t0) }
	tests := []struct {
		name  string
		edit  func(r *SyntheticRun)
		field string // named in the error
	}{
		{"empty check", func(r *SyntheticRun) { r.Check = "" }, "Check"},
		{"check with 0x00", func(r *SyntheticRun) { r.Check = "a\x00b" }, "Check"},
		{"check too long", func(r *SyntheticRun) { r.Check = strings.Repeat("c", MaxSyntheticCheckLen+1) }, "Check"},
		{"empty run ID", func(r *SyntheticRun) { r.RunID = "" }, "RunID"},
		{"run ID too long", func(r *SyntheticRun) { r.RunID = strings.Repeat("r", MaxSyntheticIDLen+1) }, "RunID"},
		{"correlation ID with 0x00", func(r *SyntheticRun) { r.CorrelationID = "x\x00" }, "CorrelationID"},
		{"correlation ID too long", func(r *SyntheticRun) { r.CorrelationID = strings.Repeat("x", MaxSyntheticIDLen+1) }, "CorrelationID"},
		{"no start", func(r *SyntheticRun) { r.Start = time.Time{} }, "Start"},
		{"start before 1970", func(r *SyntheticRun) { r.Start = time.Unix(-1, 0) }, "Start"},
		{"start after 2262", func(r *SyntheticRun) { r.Start = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }, "Start"},
		{"negative duration", func(r *SyntheticRun) { r.Duration = -1 }, "Duration"},
		{"too many steps", func(r *SyntheticRun) { r.Steps = make([]SyntheticStep, MaxSyntheticSteps+1) }, "steps"},
		{"too many assertions", func(r *SyntheticRun) { r.Steps[1].Assertions = make([]SyntheticAssertion, MaxSyntheticAssertions+1) }, "Steps[1]"},
		{"invalid UTF-8 check", func(r *SyntheticRun) { r.Check = "a\xffb" }, "Check"},
		{"invalid UTF-8 run ID", func(r *SyntheticRun) { r.RunID = "\xc3" }, "RunID"},
		{"invalid UTF-8 correlation ID", func(r *SyntheticRun) { r.CorrelationID = "\xc3(" }, "CorrelationID"},
		{"invalid UTF-8 trace ID", func(r *SyntheticRun) { r.TraceID = "\xff" }, "TraceID"},
		{"invalid UTF-8 trigger", func(r *SyntheticRun) { r.Trigger = "\xff" }, "Trigger"},
		{"invalid UTF-8 error", func(r *SyntheticRun) { r.Error = "x\xed\xa0\x80" }, "Error"},
		{"invalid UTF-8 step name", func(r *SyntheticRun) { r.Steps[0].Name = "\xff" }, "Steps[0].Name"},
		{"invalid UTF-8 method", func(r *SyntheticRun) { r.Steps[0].Method = "\xff" }, "Steps[0].Method"},
		{"invalid UTF-8 URL", func(r *SyntheticRun) { r.Steps[2].URL = "http://x/\xff" }, "Steps[2].URL"},
		{"invalid UTF-8 span ID", func(r *SyntheticRun) { r.Steps[1].SpanID = "\xff" }, "Steps[1].SpanID"},
		{"invalid UTF-8 step error", func(r *SyntheticRun) { r.Steps[1].Error = "\xff" }, "Steps[1].Error"},
		{"invalid UTF-8 body", func(r *SyntheticRun) { r.Steps[1].Body = "ok\xff" }, "Steps[1].Body"},
		{"invalid UTF-8 assertion type", func(r *SyntheticRun) { r.Steps[1].Assertions[2].Type = "\xff" }, "Steps[1].Assertions[2].Type"},
		{"invalid UTF-8 assertion target", func(r *SyntheticRun) { r.Steps[1].Assertions[2].Target = "\xff" }, "Steps[1].Assertions[2].Target"},
		{"invalid UTF-8 expected", func(r *SyntheticRun) { r.Steps[0].Assertions[0].Expected = "\xff" }, "Steps[0].Assertions[0].Expected"},
		{"invalid UTF-8 actual", func(r *SyntheticRun) { r.Steps[0].Assertions[1].Actual = "\xff" }, "Steps[0].Assertions[1].Actual"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.edit(&r)
			err := db.SaveSyntheticRun(context.Background(), r)
			if !errors.Is(err, ErrInvalidSyntheticRun) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("got %v, want ErrInvalidSyntheticRun naming %s", err, tc.field)
			}
			checkRuns(t, allRuns(t, db))
			if n := synthCounts(t, db); n != 0 {
				t.Fatalf("%d runs stored", n)
			}
		})
	}
	// The limits themselves are accepted.
	r := good()
	r.Check = strings.Repeat("c", MaxSyntheticCheckLen)
	r.RunID = strings.Repeat("r", MaxSyntheticIDLen)
	r.CorrelationID = strings.Repeat("x", MaxSyntheticIDLen)
	r.Steps = make([]SyntheticStep, MaxSyntheticSteps)
	r.Steps[0].Assertions = make([]SyntheticAssertion, MaxSyntheticAssertions)
	saveRun(t, db, r)
	got, err := db.SyntheticRun(context.Background(), r.Check, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	checkRuns(t, []SyntheticRun{got}, r)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := db.SaveSyntheticRun(ctx, synthTestRun("c", "r9", t0)); !errors.Is(err, context.Canceled) {
		t.Fatalf("save with a cancelled context: %v", err)
	}
}

func TestSaveSyntheticRunDuplicate(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	ctx := context.Background()
	first := synthTestRun("checkout", "00000000000000a1", t0)
	saveRun(t, db, first)
	// The same RunID again, even for another check, another time and
	// another correlation ID, is refused and changes nothing.
	for _, dup := range []SyntheticRun{
		first,
		synthTestRun("other", first.RunID, t0.Add(time.Hour)),
	} {
		dup.CorrelationID = "dup-corr"
		err := db.SaveSyntheticRun(ctx, dup)
		if !errors.Is(err, ErrDuplicateRun) || !strings.Contains(err.Error(), first.RunID) {
			t.Fatalf("duplicate: %v, want ErrDuplicateRun naming %s", err, first.RunID)
		}
		checkRuns(t, allRuns(t, db), first)
		if got, _ := db.SyntheticRunsByCorrelation(ctx, "dup-corr", 0); len(got) != 0 {
			t.Fatalf("duplicate indexed by its correlation ID: %v", runIDs(got))
		}
		if got, _ := db.SyntheticRunsByCorrelation(ctx, first.CorrelationID, 0); len(got) != 1 {
			t.Fatalf("first run by correlation: %v", runIDs(got))
		}
		if _, err := db.SyntheticRun(ctx, "other", first.RunID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("duplicate's check: %v", err)
		}
		if n := synthCounts(t, db); n != 1 {
			t.Fatalf("%d runs stored", n)
		}
	}
}

func TestSaveSyntheticRunCaps(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	r := synthTestRun("c", "r1", t0)
	// 'é' is 2 bytes: a cut at an odd offset must back up one byte.
	long := strings.Repeat("é", 5000)
	r.Error = long
	r.Trigger = long
	r.Steps[1].Body = long
	r.Steps[1].Error = "x" + long
	r.Steps[1].URL = long
	r.Steps[1].Assertions[0].Actual = long
	r.Steps[0].Name = strings.Repeat("n", synthShortCap) // exactly the cap: kept
	saveRun(t, db, r)
	got, err := db.SyntheticRun(context.Background(), "c", "r1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		field string
		got   string
		limit int
	}{
		{"Error", got.Error, synthTextCap},
		{"Trigger", got.Trigger, synthShortCap},
		{"Body", got.Steps[1].Body, synthTextCap},
		{"step Error", got.Steps[1].Error, synthTextCap},
		{"URL", got.Steps[1].URL, synthURLCap},
		{"Actual", got.Steps[1].Assertions[0].Actual, synthTextCap},
	} {
		if len(tc.got) > tc.limit || len(tc.got) < tc.limit-4 || !utf8.ValidString(tc.got) || !strings.HasSuffix(tc.got, "…") {
			t.Errorf("%s: %d bytes, valid UTF-8 %v, %q…", tc.field, len(tc.got), utf8.ValidString(tc.got), tc.got[:min(len(tc.got), 10)])
		}
	}
	if got.Steps[0].Name != r.Steps[0].Name {
		t.Errorf("a name at the cap was cut to %d bytes", len(got.Steps[0].Name))
	}
	if len(r.Error) != len(long) {
		t.Error("SaveSyntheticRun modified the caller's run")
	}
	for _, tc := range []struct {
		in    string
		limit int
		want  string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "…"},
		{"abcdef", 5, "ab…"},
		{"aé✓bc", 5, "a…"},
		{"aé✓bc", 6, "aé…"},
		{"aé✓bc", 7, "aé…"},
		{"aé✓bc", 8, "aé✓bc"},
	} {
		if got := capText(tc.in, tc.limit); got != tc.want {
			t.Errorf("capText(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
		}
	}
}

func TestSyntheticChecks(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	ctx := context.Background()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	var runs []SyntheticRun
	add := func(check string, s int, d time.Duration, ok bool) SyntheticRun {
		r := synthTestRun(check, fmt.Sprintf("%s-%d", check, s), at(s))
		r.Duration, r.OK = d, ok
		runs = append(runs, r)
		return r
	}
	// Check "a": 10 runs of 10..100 ms (saved shuffled), 4 failures; "b":
	// one run; "ab" prefixes nothing of "a"; "c" only outside the range.
	var lastA SyntheticRun
	for i, n := range []int{7, 2, 9, 1, 10, 4, 3, 8, 6, 5} {
		r := add("a", 10+n, time.Duration(n)*10*time.Millisecond, i%3 != 0)
		if n == 10 {
			lastA = r
		}
	}
	lastB := add("b", 15, 250*time.Millisecond, false)
	add("ab", 5, time.Second, true)
	add("c", 100, time.Second, true)
	add("a", 200, time.Hour, true) // out of range
	for _, r := range runs {
		saveRun(t, db, r)
	}
	stats := func(start, end time.Time) []SyntheticCheckStats {
		t.Helper()
		got, err := db.SyntheticChecks(ctx, start, end)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := stats(at(0), at(50))
	want := []SyntheticCheckStats{
		{Check: "a", Runs: 10, Failures: 4, P50: 50 * time.Millisecond, P99: 100 * time.Millisecond, Last: normRun(lastA)},
		{Check: "ab", Runs: 1, Failures: 0, P50: time.Second, P99: time.Second, Last: normRun(runs[11])},
		{Check: "b", Runs: 1, Failures: 1, P50: 250 * time.Millisecond, P99: 250 * time.Millisecond, Last: normRun(lastB)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("stats:\n got %+v\nwant %+v", got, want)
	}
	// Inclusive bounds: the runs of "a" at 12, 13 and 14 s (20, 30 and
	// 40 ms): p50 is rank 2, p99 rank 3.
	got = stats(at(12), at(14))
	if len(got) != 1 || got[0].Check != "a" || got[0].Runs != 3 || got[0].P50 != 30*time.Millisecond ||
		got[0].P99 != 40*time.Millisecond || got[0].Last.RunID != "a-14" {
		t.Fatalf("stats of 12..14 s: %+v", got)
	}
	// Unbounded: "a" has 11 runs, p99 (rank 11) is the hour; p50 rank 6.
	got = stats(time.Time{}, time.Time{})
	if len(got) != 4 || got[0].Runs != 11 || got[0].P99 != time.Hour || got[0].P50 != 60*time.Millisecond || got[0].Last.RunID != "a-200" {
		t.Fatalf("unbounded stats: %+v", got)
	}
	if got := stats(at(60), at(99)); len(got) != 0 {
		t.Fatalf("empty range: %+v", got)
	}
	if got := stats(at(50), at(0)); len(got) != 0 {
		t.Fatalf("end before start: %+v", got)
	}
}

// TestSyntheticQuantiles checks the nearest rank against
// aggregate.NearestRankPercentile (through hdrhistogram-go's rank rule) and
// nthSmallest against sorting.
func TestSyntheticQuantiles(t *testing.T) {
	for n := 1; n <= 500; n++ {
		for _, q := range []float64{0.01, 0.29, 0.5, 0.9, 0.99, 0.999, 1} {
			p := aggregate.NearestRankPercentile(q, int64(n))
			hdrRank := max(1, int(p/100*float64(n)+0.5))
			if got := nearestRank(q, n); got != hdrRank {
				t.Fatalf("q %v n %d: rank %d, aggregate's %d", q, n, got, hdrRank)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := 1 + r.IntN(200)
		a := make([]int64, n)
		for i := range a {
			a[i] = r.Int64N(int64(1 + r.IntN(50))) // many duplicates
		}
		sorted := slices.Sorted(slices.Values(a))
		k := r.IntN(n)
		if got := nthSmallest(a, k); got != sorted[k] {
			t.Fatalf("nthSmallest(%v, %d) = %d, want %d", a, k, got, sorted[k])
		}
		for i := range a {
			if (i < k && a[i] > a[k]) || (i > k && a[i] < a[k]) {
				t.Fatalf("not partitioned around %d: %v", k, a)
			}
		}
	}
}

func TestSyntheticRetention(t *testing.T) {
	// now is read by the store's background work too: atomic.
	var now atomic.Int64
	now.Store(t0.UnixNano())
	db, err := Open(t.TempDir(), Options{
		Retention: time.Hour, SyntheticRetention: 48 * time.Hour, CheckpointInterval: time.Hour, RetentionInterval: time.Hour,
		Now: func() time.Time { return time.Unix(0, now.Load()).UTC() },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	// More old runs than one retention transaction deletes, over two
	// checks; one exactly at the cutoff (kept) and a recent one.
	old := make([]SyntheticRun, 2*retentionBatch+10)
	for i := range old {
		old[i] = synthTestRun([]string{"a", "b"}[i%2], fmt.Sprintf("old-%05d", i), t0.Add(-72*time.Hour+time.Duration(i)*time.Second))
		if i%3 == 0 {
			old[i].CorrelationID = "shared"
		}
	}
	saveRunsBulk(t, db, old)
	edge := synthTestRun("a", "edge", t0.Add(-48*time.Hour))
	edge.CorrelationID = "shared"
	recent := synthTestRun("b", "recent", t0.Add(-time.Minute))
	saveRun(t, db, edge)
	saveRun(t, db, recent)
	if n := synthCounts(t, db); n != len(old)+2 {
		t.Fatalf("%d runs before retention", n)
	}
	if err := db.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	checkRuns(t, allRuns(t, db), recent, edge)
	if n := synthCounts(t, db); n != 2 { // every index entry of the old runs is gone
		t.Fatalf("%d runs after retention", n)
	}
	got, err := db.SyntheticRunsByCorrelation(ctx, "shared", 0)
	if err != nil {
		t.Fatal(err)
	}
	checkRuns(t, got, edge)
	st, err := db.SyntheticChecks(ctx, time.Time{}, time.Time{})
	if err != nil || len(st) != 2 || st[0].Runs != 1 || st[1].Runs != 1 {
		t.Fatalf("stats after retention: %+v %v", st, err)
	}
	if _, err := db.SyntheticRun(ctx, "a", "old-00000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired run: %v", err)
	}
	// The span retention (1 h) does not apply to runs; theirs does.
	now.Store(t0.Add(48*time.Hour - time.Minute).UnixNano())
	if err := db.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	checkRuns(t, allRuns(t, db), recent)
	now.Store(t0.Add(30 * 24 * time.Hour).UnixNano())
	if err := db.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	checkRuns(t, allRuns(t, db))
	if n := synthCounts(t, db); n != 0 {
		t.Fatalf("%d runs left", n)
	}
}

func TestSyntheticRetentionDefault(t *testing.T) {
	var o Options
	o.setDefaults()
	if o.SyntheticRetention != 30*24*time.Hour {
		t.Fatalf("default synthetic retention %v", o.SyntheticRetention)
	}
}

func TestSyntheticRunsCap(t *testing.T) {
	now := t0
	db := openTest(t, t.TempDir(), &now)
	added := 0
	for _, tc := range []struct {
		max       uint64
		add       int
		wantFirst int // Attempt (insertion number) of the oldest run kept
		wantN     int
	}{
		{max: 5, add: 12, wantFirst: 7, wantN: 5},
		{max: 5, add: 3, wantFirst: 10, wantN: 5},
		{max: 100, add: 3, wantFirst: 10, wantN: 8},
		// More to delete than one retention transaction takes.
		{max: 3, add: 2*retentionBatch + 1, wantFirst: 18 + 2*retentionBatch + 1 - 3, wantN: 3},
	} {
		db.syntheticLog.max = tc.max
		runs := make([]SyntheticRun, tc.add)
		for i := range runs {
			// Start in insertion order, over three checks.
			runs[i] = SyntheticRun{Check: fmt.Sprint("c", added%3), RunID: fmt.Sprintf("r%06d", added), CorrelationID: "x",
				Start: t0.Add(time.Duration(added) * time.Millisecond), Attempt: added}
			added++
		}
		saveRunsBulk(t, db, runs)
		if err := db.ApplyRetention(); err != nil {
			t.Fatal(err)
		}
		got := allRuns(t, db)
		if len(got) != tc.wantN || synthCounts(t, db) != tc.wantN {
			t.Fatalf("max %d: %d runs kept, want %d", tc.max, len(got), tc.wantN)
		}
		if got[0].Attempt != added-1 || got[len(got)-1].Attempt != tc.wantFirst {
			t.Fatalf("max %d: kept runs %d to %d, want %d to %d", tc.max,
				got[len(got)-1].Attempt, got[0].Attempt, tc.wantFirst, added-1)
		}
	}
}

func TestSaveSyntheticRunFailedTx(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	r := synthTestRun("c", "r1", t0)
	db.syntheticLog.failTx = func() error { return fmt.Errorf("write: %w", syscall.ENOSPC) }
	err := db.SaveSyntheticRun(context.Background(), r)
	if !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("save on a full disk: %v", err)
	}
	if err := db.Ready(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("ready after a full disk: %v", err)
	}
	db.syntheticLog.failTx = func() error { return errors.New("boom") }
	if err := db.SaveSyntheticRun(context.Background(), r); err == nil || errors.Is(err, ErrDiskFull) {
		t.Fatalf("save with a failing transaction: %v", err)
	}
	checkRuns(t, allRuns(t, db))
	if n := synthCounts(t, db); n != 0 {
		t.Fatalf("%d runs stored", n)
	}
	db.syntheticLog.failTx = nil
	db.diskFull.Store(false)
	saveRun(t, db, r) // the failed attempts left no trace of the RunID
	checkRuns(t, allRuns(t, db), r)
}

func TestSyntheticAfterClose(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	checks := map[string]error{
		"SaveSyntheticRun": db.SaveSyntheticRun(ctx, synthTestRun("c", "r", t0)),
	}
	_, checks["SyntheticRuns"] = db.SyntheticRuns(ctx, SyntheticRunQuery{})
	_, checks["SyntheticRun"] = db.SyntheticRun(ctx, "c", "r")
	_, checks["SyntheticRunsByCorrelation"] = db.SyntheticRunsByCorrelation(ctx, "x", 0)
	_, checks["SyntheticChecks"] = db.SyntheticChecks(ctx, time.Time{}, time.Time{})
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
	if err := db.syntheticUpdate("x", func(*bolt.Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("update on a closed file: %v", err)
	}
}

func TestSyntheticRecordDecode(t *testing.T) {
	r := synthTestRun("c", "r1", t0)
	rec := encodeSyntheticRun(&r)
	got, err := decodeSyntheticRun("r1", rec)
	if err != nil {
		t.Fatal(err)
	}
	checkRuns(t, []SyntheticRun{got}, r)
	for n := range len(rec) {
		if _, err := decodeSyntheticRun("r1", rec[:n]); err == nil {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
	if _, err := decodeSyntheticRun("r1", append(slices.Clone(rec), 0)); err == nil {
		t.Error("trailing byte: no error")
	}
	bad := slices.Clone(rec)
	bad[0] = 9
	if _, err := decodeSyntheticRun("r1", bad); err == nil {
		t.Error("version 9: no error")
	}
	for _, v := range [][]byte{nil, {0}, {2, 1}, {1}, {1, 0x80}, {1, 1, 0}} {
		if _, _, err := decodeSynthSummary(v); err == nil {
			t.Errorf("summary %x: no error", v)
		}
	}
	if d, ok, err := decodeSynthSummary(synthSummary(time.Hour, true)); err != nil || !ok || d != int64(time.Hour) {
		t.Errorf("summary round trip: %v %v %v", d, ok, err)
	}
}

// FuzzSyntheticRecordDecode checks that decoding any bytes never panics
// and that what decodes encodes back to the same record.
func FuzzSyntheticRecordDecode(f *testing.F) {
	r := synthTestRun("c", "r1", t0)
	f.Add(encodeSyntheticRun(&r))
	f.Add([]byte{synthRunVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		got, err := decodeSyntheticRun("r", b)
		if err != nil {
			return
		}
		if !utf8.ValidString(got.Check+got.CorrelationID+got.TraceID+got.Trigger+got.Error) || got.Start.Before(unixEpoch) || got.Duration < 0 {
			return // not something SaveSyntheticRun stores; its text caps do not hold either
		}
		again, err := decodeSyntheticRun("r", encodeSyntheticRun(&got))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		_ = again
	})
}

func TestSyntheticSchemaUpgradeFromV2(t *testing.T) {
	dir := t.TempDir()
	now := t0.Add(time.Hour)
	db := openTest(t, dir, &now)
	ds := otlptest.Generate(otlptest.Options{Traces: 5, Services: 2, SpansPerTrace: 2, Start: t0})
	writeDataset(t, db, ds, 2)
	st := alertTestState("R", "k", AlertFiring)
	if err := db.SaveAlerts([]AlertState{st}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// Make it a version-2 file: schema 2, no synthetic buckets or keys.
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSynthRuns, bucketSynthByID, bucketSynthByCorr, bucketSynthByTime} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Delete(keySynthRuns); err != nil {
			return err
		}
		return meta.Put(keySchema, u64(2))
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
	if schema != SchemaVersion || SchemaVersion != 4 {
		t.Fatalf("schema after upgrade: %d (SchemaVersion %d)", schema, SchemaVersion)
	}
	// The old data is still there, and synthetic runs work.
	var id TraceID
	copy(id[:], ds.Spans[0].Span.TraceId)
	if _, err := db.Trace(context.Background(), id); err != nil {
		t.Fatalf("trace after upgrade: %v", err)
	}
	checkStates(t, db, st)
	checkRuns(t, allRuns(t, db))
	if got, err := db.SyntheticChecks(context.Background(), time.Time{}, time.Time{}); err != nil || len(got) != 0 {
		t.Fatalf("stats after upgrade: %v %v", got, err)
	}
	if err := db.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	r := synthTestRun("c", "r1", t0)
	saveRun(t, db, r)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, &now)
	checkRuns(t, allRuns(t, db), r)
	if n := synthCounts(t, db); n != 1 {
		t.Fatalf("%d runs after reopen", n)
	}
}

// synthResourceSpans returns the prober's spans of one run: a root span
// and one CLIENT span per step, under a resource with service.name
// synthetics and synthetic.check; and the frontend's SERVER span for each
// step, child of the step's span, under its own resource.
func synthResourceSpans(check string, trace uint64, start time.Time, steps int) (prober, frontend *tracepb.ResourceSpans) {
	ns := func(d time.Duration) uint64 { return uint64(start.Add(d).UnixNano()) }
	root := &tracepb.Span{
		TraceId: otlptest.TraceID(trace), SpanId: otlptest.SpanID(trace<<8 | 1), Name: check, Kind: tracepb.Span_SPAN_KIND_INTERNAL,
		StartTimeUnixNano: ns(0), EndTimeUnixNano: ns(time.Duration(steps) * 10 * time.Millisecond),
		Attributes: []*commonpb.KeyValue{otlptest.Str("synthetic.check", check), otlptest.Str("user_agent.synthetic.type", "test")},
	}
	prober = &tracepb.ResourceSpans{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			otlptest.Str("service.name", "synthetics"), otlptest.Str("synthetic.check", check)}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{root}}},
	}
	frontend = &tracepb.ResourceSpans{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlptest.Str("service.name", "frontend")}},
		ScopeSpans: []*tracepb.ScopeSpans{{}},
	}
	for i := range steps {
		off := time.Duration(i) * 10 * time.Millisecond
		step := &tracepb.Span{
			TraceId: otlptest.TraceID(trace), SpanId: otlptest.SpanID(trace<<8 | uint64(2*i+2)), ParentSpanId: root.SpanId,
			Name: "POST", Kind: tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: ns(off), EndTimeUnixNano: ns(off + 8*time.Millisecond),
			Attributes: []*commonpb.KeyValue{otlptest.Str("http.request.method", "POST"),
				otlptest.Str("url.full", "http://shop.local:8080/login"), otlptest.Str("server.address", "shop.local")},
		}
		server := &tracepb.Span{
			TraceId: otlptest.TraceID(trace), SpanId: otlptest.SpanID(trace<<8 | uint64(2*i+3)), ParentSpanId: step.SpanId,
			Name: "POST /login", Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: ns(off + time.Millisecond), EndTimeUnixNano: ns(off + 7*time.Millisecond),
		}
		prober.ScopeSpans[0].Spans = append(prober.ScopeSpans[0].Spans, step)
		frontend.ScopeSpans[0].Spans = append(frontend.ScopeSpans[0].Spans, server)
	}
	return prober, frontend
}

// TestSyntheticNodeInStore checks, through WriteTraces, that the prober's
// spans are the node synthetic:<check> in the flow graph, calling frontend
// once per step span, and the service synthetic:<check> of the services
// listing, operations, trace search and summaries; the resource's own
// service.name (synthetics) stays searchable as an attribute.
func TestSyntheticNodeInStore(t *testing.T) {
	now := t0.Add(time.Minute)
	db := openAgg(t, t.TempDir(), &now)
	ctx := context.Background()
	const runs, steps = 4, 3
	for run := range runs {
		p, f := synthResourceSpans("checkout-journey", uint64(run+1), t0.Add(time.Duration(run)*time.Second), steps)
		if run%2 == 0 { // the prober's and the frontend's spans in one request
			if res, err := db.WriteTraces(ctx, encode(t, &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{p, f}})); err != nil || res.Rejected != 0 {
				t.Fatalf("write: %v %+v", err, res)
			}
			continue
		}
		for _, rs := range []*tracepb.ResourceSpans{f, p} { // or apart, the server first
			if res, err := db.WriteTraces(ctx, encode(t, &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{rs}})); err != nil || res.Rejected != 0 {
				t.Fatalf("write: %v %+v", err, res)
			}
		}
	}
	check := func(phase string) {
		t.Helper()
		g, err := db.FlowGraph(ctx, t0.Add(-time.Minute), t0.Add(time.Minute), aggregate.GraphQuery{Level: aggregate.LevelService})
		if err != nil {
			t.Fatal(err)
		}
		sameEdges(t, phase, graphEdges(g), map[string]int64{"synthetic:checkout-journey->frontend": runs * steps})
		nodes := map[string]int64{}
		for _, n := range g.Nodes {
			nodes[n.ID] = n.Spans
		}
		if want := map[string]int64{"synthetic:checkout-journey": runs * (steps + 1), "frontend": runs * steps}; !reflect.DeepEqual(nodes, want) {
			t.Fatalf("%s: nodes %v, want %v", phase, nodes, want)
		}

		svcs, err := db.Services(ctx, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		want := []ServiceStats{{Name: "frontend", SpanCount: runs * steps}, {Name: "synthetic:checkout-journey", SpanCount: runs * (steps + 1)}}
		if !reflect.DeepEqual(svcs, want) {
			t.Fatalf("%s: services %+v, want %+v", phase, svcs, want)
		}
		ops, err := db.Operations(ctx, "synthetic:checkout-journey")
		if err != nil || len(ops) != 2 {
			t.Fatalf("%s: operations %+v %v", phase, ops, err)
		}

		for _, q := range []TraceQuery{
			{Service: "synthetic:checkout-journey"},
			{Service: "synthetic:checkout-journey", Operation: "checkout-journey"},
			{Service: "frontend"},
			{Attributes: map[string]string{"service.name": "synthetics"}},
			{Attributes: map[string]string{"synthetic.check": "checkout-journey"}},
		} {
			got, err := db.FindTraces(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != runs {
				t.Fatalf("%s: FindTraces %+v found %d traces, want %d", phase, q, len(got), runs)
			}
			for _, s := range got {
				if s.RootService != "synthetic:checkout-journey" || s.RootOperation != "checkout-journey" ||
					!slices.Equal(s.Services, []string{"frontend", "synthetic:checkout-journey"}) || s.SpanCount != 2*steps+1 {
					t.Fatalf("%s: summary %+v", phase, s)
				}
			}
		}
		for _, svc := range []string{"synthetics", "synthetic:", "synthetic:checkout"} {
			if got, err := db.FindTraces(ctx, TraceQuery{Service: svc}); err != nil || len(got) != 0 {
				t.Fatalf("%s: FindTraces service %q: %d traces, %v", phase, svc, len(got), err)
			}
		}
	}
	check("in memory")
	if err := db.checkpoint(); err != nil { // segments and postings on disk
		t.Fatal(err)
	}
	if err := db.flushRollups(false); err != nil {
		t.Fatal(err)
	}
	check("persisted")
}

// BenchmarkSyntheticChecks measures SyntheticChecks, as the Synthetics view
// polls it, over 100 checks run every 10 s for 24 h (864,000 runs, built
// once in large transactions, not timed): the whole day and the last hour.
// With -short it uses 2 h of runs instead.
//
//	go test -run='^$' -bench=SyntheticChecks -benchtime=20x ./store
func BenchmarkSyntheticChecks(b *testing.B) {
	const checks = 100
	span := 24 * time.Hour
	if testing.Short() {
		span = 2 * time.Hour
	}
	db, err := Open(b.TempDir(), Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour, DisableAggregation: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	end := t0.Add(span)
	perCheck := int(span / (10 * time.Second))
	r := rand.New(rand.NewPCG(7, 7))
	batch := make([]SyntheticRun, 0, 20_000)
	for i := range perCheck {
		// Every check once per 10 s, staggered as the scheduler spreads
		// them: keys arrive interleaved across checks, as in production.
		for c := range checks {
			run := synthTestRun(fmt.Sprintf("check-%03d", c), fmt.Sprintf("%016x", i*checks+c),
				t0.Add(time.Duration(i)*10*time.Second+time.Duration(c)*100*time.Millisecond))
			run.Steps = run.Steps[:1] // records are not read; smaller ones build faster
			run.Duration = time.Duration(50+r.IntN(1000)) * time.Millisecond
			run.OK = r.IntN(50) != 0
			batch = append(batch, run)
		}
		if len(batch) >= 20_000 || i == perCheck-1 {
			saveRunsBulk(b, db, batch)
			batch = batch[:0]
		}
	}
	ctx := context.Background()
	for _, bc := range []struct {
		name       string
		start, end time.Time
		runs       int
	}{
		{"range=all", t0, end, perCheck * checks},
		{"range=1h", end.Add(-time.Hour), end, 360 * checks},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				st, err := db.SyntheticChecks(ctx, bc.start, bc.end)
				if err != nil {
					b.Fatal(err)
				}
				if len(st) != checks {
					b.Fatalf("%d checks", len(st))
				}
				var n int64
				for _, s := range st {
					n += s.Runs
				}
				if n < int64(bc.runs)-checks || n > int64(bc.runs) {
					b.Fatalf("%d runs in range, want about %d", n, bc.runs)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/call")
			b.ReportMetric(float64(bc.runs), "runs")
		})
	}
}

// BenchmarkSaveSyntheticRun measures one durable save of a 3-step run.
func BenchmarkSaveSyntheticRun(b *testing.B) {
	db, err := Open(b.TempDir(), Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := db.SaveSyntheticRun(context.Background(), synthTestRun("c", fmt.Sprintf("%016x", i), t0.Add(time.Duration(i)*time.Second))); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
