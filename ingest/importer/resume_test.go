package importer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/ingest/storesink"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/store"
)

// errKilled stands for the death of the importing process.
var errKilled = errors.New("killed")

// markStoreSink is what storesink.New returns: a Sink with marks.
type markStoreSink interface {
	Sink
	MarkSink
}

// killingSink passes requests to a store sink until after of them were
// stored, then refuses every request without storing it: the import dies
// between two requests, as when its process is killed.
type killingSink struct {
	markStoreSink
	after, stored int
}

func (s *killingSink) ConsumeTraces(ctx context.Context, req []byte) (ingest.Result, error) {
	if s.after > 0 && s.stored >= s.after {
		return ingest.Result{}, errKilled
	}
	res, err := s.markStoreSink.ConsumeTraces(ctx, req)
	if err == nil {
		s.stored++
	}
	return res, err
}

// storedSpans counts the spans the store holds (over every service).
func storedSpans(t *testing.T, db *store.DB) int64 {
	t.Helper()
	services, err := db.Services(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, s := range services {
		n += s.SpanCount
	}
	return n
}

// TestImportKilledAndRerun imports a file, kills the import part way,
// restarts the store and imports the file again: the second import must
// resume after the last stored request, so that every span is stored
// exactly once; a third import of the done file sends nothing; force
// imports it again.
func TestImportKilledAndRerun(t *testing.T) {
	rebase1 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rebase2 := rebase1.Add(time.Hour)
	type run struct {
		opts      Options
		killAfter int // 0: not killed
		// Expectations.
		wantErr      bool
		wantPrevious int64 // Previous.Requests; -1: no Previous
		wantSkipped  bool
		wantStored   func(total int64) int64
		wantShift    time.Duration // when not 0
		wantWarning  string
	}
	once := func(total int64) int64 { return total }
	cases := []struct {
		name string
		runs []run
	}{
		{"killed then re-run resumes", []run{
			{killAfter: 5, wantErr: true, wantPrevious: -1, wantStored: func(int64) int64 { return -1 }},
			{wantPrevious: 5, wantStored: once},
		}},
		{"killed twice", []run{
			{killAfter: 3, wantErr: true, wantPrevious: -1, wantStored: func(int64) int64 { return -1 }},
			{killAfter: 4, wantErr: true, wantPrevious: 3, wantStored: func(int64) int64 { return -1 }},
			{wantPrevious: 7, wantStored: once},
		}},
		{"done file is skipped", []run{
			{wantPrevious: -1, wantStored: once},
			{wantPrevious: 0, wantSkipped: true, wantStored: once},
		}},
		{"force imports again", []run{
			{wantPrevious: -1, wantStored: once},
			{opts: Options{Force: true}, wantPrevious: -1, wantStored: func(total int64) int64 { return 2 * total }},
			{wantPrevious: 0, wantSkipped: true, wantStored: func(total int64) int64 { return 2 * total }},
		}},
		{"rebased resume keeps the first shift", []run{
			{opts: Options{Rebase: rebase1}, killAfter: 2, wantErr: true, wantPrevious: -1, wantStored: func(int64) int64 { return -1 }},
			{opts: Options{Rebase: rebase2}, wantPrevious: 2, wantStored: once, wantWarning: "resumed with the shift of the interrupted import"},
		}},
		{"rebased and not rebased are different imports", []run{
			{wantPrevious: -1, wantStored: once},
			{opts: Options{Rebase: rebase1}, wantPrevious: -1, wantStored: func(total int64) int64 { return 2 * total }},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in := flowInput(400)
			var firstShift time.Duration
			for i, r := range tc.runs {
				// Each run opens the store afresh, as a restarted process
				// does.
				db, err := store.Open(dir, store.Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				sink := &killingSink{markStoreSink: storesink.New(db), after: r.killAfter}
				opts := r.opts
				opts.BatchSpans = 16
				sum, err := Import(context.Background(), in, sink, opts)
				if (err != nil) != r.wantErr {
					t.Fatalf("run %d: err %v, want error %v", i, err, r.wantErr)
				}
				if r.wantErr && !errors.Is(err, errKilled) {
					t.Fatalf("run %d: err %v, want killed", i, err)
				}
				switch {
				case r.wantPrevious < 0 && sum.Previous != nil:
					t.Errorf("run %d: previous %+v, want none", i, sum.Previous)
				case r.wantPrevious >= 0 && sum.Previous == nil:
					t.Errorf("run %d: no previous import found", i)
				case r.wantPrevious > 0 && sum.Previous.Requests != r.wantPrevious:
					t.Errorf("run %d: resumed after %d requests, want %d", i, sum.Previous.Requests, r.wantPrevious)
				}
				if sum.AlreadyImported != r.wantSkipped {
					t.Errorf("run %d: alreadyImported %v, want %v", i, sum.AlreadyImported, r.wantSkipped)
				}
				if r.wantSkipped && (sum.Requests != 0 || sum.Previous == nil || !sum.Previous.Done || sum.Previous.SentSpans != sum.OTLPSpans) {
					t.Errorf("run %d: skipped import sent %d requests, previous %+v", i, sum.Requests, sum.Previous)
				}
				if !r.wantErr && !r.wantSkipped {
					if sum.SentSpans != sum.OTLPSpans {
						t.Errorf("run %d: sent %d spans, file has %d", i, sum.SentSpans, sum.OTLPSpans)
					}
				}
				if i == 0 {
					firstShift = sum.Shift
				} else if opts.Rebase.IsZero() == tc.runs[0].opts.Rebase.IsZero() && !opts.Force && sum.Shift != firstShift {
					t.Errorf("run %d: shift %v, want the first run's %v", i, sum.Shift, firstShift)
				}
				if r.wantWarning != "" && !strings.Contains(strings.Join(sum.Warnings, "\n"), r.wantWarning) {
					t.Errorf("run %d: warnings %q lack %q", i, sum.Warnings, r.wantWarning)
				}
				if want := r.wantStored(sum.OTLPSpans); want >= 0 {
					if got := storedSpans(t, db); got != want {
						t.Errorf("run %d: the store holds %d spans, want %d (the file has %d)", i, got, want, sum.OTLPSpans)
					}
				}
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestImportMarkSkipsSpigoMetrics imports a one-request file (a spigo
// Guesstimate) twice: the second import sends nothing.
func TestImportMarkSkipsSpigoMetrics(t *testing.T) {
	db := openStore(t, t.TempDir())
	in := fileInput(t, spigoDir+"json_metrics/lamp.guess")
	first, err := Import(context.Background(), in, storesink.New(db), Options{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := Import(context.Background(), in, storesink.New(db), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if first.AlreadyImported || first.Requests != 1 || !second.AlreadyImported || second.Requests != 0 ||
		second.Previous == nil || second.Previous.SentPoints != first.MetricPoints {
		t.Errorf("first %+v\nsecond %+v", first, second)
	}
}

// TestImportWithoutMarks: a sink without marks gets the whole file at
// every import, as before marks existed.
func TestImportWithoutMarks(t *testing.T) {
	in := flowInput(40)
	for range 2 {
		sink := &recordingSink{}
		sum, err := Import(context.Background(), in, sink, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Previous != nil || sum.AlreadyImported || int64(len(sink.spans(t))) != sum.OTLPSpans {
			t.Fatalf("summary %+v, sink got %d spans", sum, len(sink.spans(t)))
		}
	}
}
