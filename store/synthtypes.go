package store

import "time"

// SyntheticRun is the stored result of one run of a synthetic check: a
// scheduled or manual execution of its steps, which is also one trace
// (TraceID) whose root span the prober wrote through WriteTraces. Values
// taken from ${env:NAME} variables are masked by the prober before a run
// reaches the store.
type SyntheticRun struct {
	// Check is the check's name; RunID identifies the run within the
	// store (unique across checks: 16 lowercase hex digits).
	Check string
	RunID string
	// CorrelationID is the run's correlation ID, sent in the correlation
	// header and in baggage on every request.
	CorrelationID string
	// TraceID is the run's trace (32 lowercase hex digits).
	TraceID string
	// Trigger is "schedule" or "manual" (POST /api/v1/synthetics/{check}:run).
	Trigger string
	// Start is when the run started; Duration how long it took in total.
	Start    time.Time
	Duration time.Duration
	// OK is the run's outcome: every step that ran without
	// continue_on_failure passed.
	OK bool
	// Error says why the run failed (the first failed step's error or
	// failed assertion), empty when OK.
	Error string
	// Attempt counts from 1: a run retried (the check's retries) stores
	// its last attempt.
	Attempt int
	Steps   []SyntheticStep
}

// SyntheticStep is the result of one step of a run.
type SyntheticStep struct {
	Name string
	// Method and URL are the request's, after interpolation, with secret
	// values masked.
	Method string
	URL    string
	// Status is the HTTP status code, 0 when no response arrived.
	Status int
	// OK is the step's outcome; Skipped marks a step that did not run
	// because an earlier one failed.
	OK      bool
	Skipped bool
	// ContinueOnFailure is the step's setting: its failure did not end
	// the run.
	ContinueOnFailure bool
	// SpanID is the step's CLIENT span (16 lowercase hex digits).
	SpanID string
	// Timings of the request (zero when a phase did not happen, such as
	// DNS for an IP address or TLS for http).
	Timings SyntheticTimings
	// Assertions are the step's assertions in order, each with the value
	// it saw.
	Assertions []SyntheticAssertion
	// Error is the transport error (connection refused, timeout, DNS,
	// TLS) or the first failed assertion, empty when OK.
	Error string
	// Body holds the first 1 KiB of the response body when the step
	// failed (secrets masked), empty otherwise.
	Body string
}

// SyntheticTimings are the phases of one HTTP request, from
// net/http/httptrace.
type SyntheticTimings struct {
	DNS       time.Duration
	Connect   time.Duration
	TLS       time.Duration
	FirstByte time.Duration // from the start of the request to the first response byte
	Total     time.Duration // from the start of the request to the end of the body
}

// SyntheticAssertion is one assertion of a step and its outcome.
type SyntheticAssertion struct {
	// Type is the assertion's kind: "status", "status_in",
	// "latency_below", "body_contains", "jsonpath_equals",
	// "jsonpath_exists" or "header".
	Type string
	// Target is what it looks at: the JSONPath or header name, empty for
	// the others.
	Target string
	// Expected and Actual are shown to people, e.g. "200" and "503",
	// "< 500ms" and "812ms" (secrets masked).
	Expected string
	Actual   string
	OK       bool
}

// SyntheticRunQuery selects the runs of Check with Start in [Start, End]
// (zero: unbounded), newest first, at most Limit (0 or negative: 100; more
// than 10,000 is taken as 10,000). See DB.SyntheticRuns.
type SyntheticRunQuery struct {
	Check      string
	Start, End time.Time
	Limit      int
}

// SyntheticCheckStats summarizes the runs of one check with Start in a
// range. See DB.SyntheticChecks.
type SyntheticCheckStats struct {
	Check string
	// Runs counts the runs in the range; Failures those with OK false.
	Runs, Failures int64
	// P50 and P99 are the nearest-rank quantiles of the runs' Duration:
	// the value of rank ceil(q·Runs), at least 1, in ascending order (as
	// aggregate.NearestRankPercentile defines them for the latency API).
	P50, P99 time.Duration
	// Last is the newest run in the range, with its steps.
	Last SyntheticRun
}
