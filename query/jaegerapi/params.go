package jaegerapi

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flowscope/flowscope/store"
)

// Parameter parsing follows Jaeger's query_parser.go: the same names,
// defaults, order of checks and error messages, so that a client sees the
// same 400 for the same mistake.

// Defaults of Jaeger's query service.
const (
	// defaultSearchLimit is the limit of a search without limit=.
	defaultSearchLimit = 100
	// defaultSearchLookback is how far back a search without start= looks.
	defaultSearchLookback = 48 * time.Hour
	// defaultDependenciesLookback is the lookback= of dependencies.
	defaultDependenciesLookback = 24 * time.Hour
)

var (
	errServiceRequired = errors.New("parameter 'service' is required")
	errMaxBelowMin     = errors.New("'maxDuration' should be greater than 'minDuration'")
)

// traceQuery is a parsed /api/traces request.
type traceQuery struct {
	service, operation       string
	start, end               time.Time
	tags                     map[string]string
	limit                    int
	minDuration, maxDuration time.Duration
	traceIDs                 []traceID
	raw                      bool
}

// parseTraceQuery parses the parameters of /api/traces:
//
//	service=, operation=           strings
//	start=, end=                   Unix microseconds (default now-48h, now)
//	limit=                         a 32-bit integer (default 100)
//	minDuration=, maxDuration=     Go durations ("1.5ms")
//	tag=key:value                  repeated
//	tags={"key":"value",…}         JSON, repeated
//	traceID=                       hex, repeated: fetch these traces only
//	raw=                           a bool: skip the adjusters
//
// Other parameters (lookback, which Jaeger's UI sends beside start and
// end, prettyPrint) are ignored here, as by Jaeger.
func parseTraceQuery(form url.Values, now time.Time) (*traceQuery, error) {
	q := &traceQuery{service: form.Get("service"), operation: form.Get("operation"), limit: defaultSearchLimit}
	var err error
	if q.start, err = parseTime(form, "start", time.Microsecond, now.Add(-defaultSearchLookback)); err != nil {
		return nil, err
	}
	if q.end, err = parseTime(form, "end", time.Microsecond, now); err != nil {
		return nil, err
	}
	if q.tags, err = parseTags(form["tag"], form["tags"]); err != nil {
		return nil, err
	}
	if s := form.Get("limit"); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return nil, err // unwrapped, as Jaeger does
		}
		q.limit = int(n)
	}
	if q.minDuration, err = parseDuration(form, "minDuration"); err != nil {
		return nil, err
	}
	if q.maxDuration, err = parseDuration(form, "maxDuration"); err != nil {
		return nil, err
	}
	for _, s := range form["traceID"] {
		id, err := parseTraceID(s)
		if err != nil {
			return nil, fmt.Errorf("cannot parse traceID param: %w", err)
		}
		q.traceIDs = append(q.traceIDs, id)
	}
	if q.raw, err = parseBool(form, "raw"); err != nil {
		return nil, err
	}
	if len(q.traceIDs) == 0 && q.service == "" {
		return nil, errServiceRequired
	}
	if q.minDuration != 0 && q.maxDuration != 0 && q.maxDuration < q.minDuration {
		return nil, errMaxBelowMin
	}
	return q, nil
}

// dependenciesQuery is a parsed /api/dependencies request.
type dependenciesQuery struct {
	end      time.Time
	lookback time.Duration
	service  string
}

// parseDependenciesQuery parses endTs= (Unix milliseconds, default now),
// lookback= (milliseconds, default 24h) and service= (keep the links of
// this service only).
func parseDependenciesQuery(form url.Values, now time.Time) (*dependenciesQuery, error) {
	end, err := parseTime(form, "endTs", time.Millisecond, now)
	if err != nil {
		return nil, err
	}
	q := &dependenciesQuery{end: end, lookback: defaultDependenciesLookback, service: form.Get("service")}
	if s := form.Get("lookback"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, parseError("lookback", err)
		}
		q.lookback = time.Duration(n) * time.Millisecond
	}
	return q, nil
}

// parseTime parses a time in units since the Unix epoch; a missing one
// is def. Like Jaeger, a value out of range wraps around.
func parseTime(form url.Values, name string, unit time.Duration, def time.Time) (time.Time, error) {
	s := form.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, parseError(name, err)
	}
	return time.Unix(0, 0).Add(time.Duration(n) * unit), nil
}

// parseDuration parses a Go duration; a missing one is 0.
func parseDuration(form url.Values, name string) (time.Duration, error) {
	s := form.Get(name)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, parseError(name, err)
	}
	return d, nil
}

// parseBool parses a boolean as strconv.ParseBool; a missing one is false.
func parseBool(form url.Values, name string) (bool, error) {
	s := form.Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, parseError(name, err)
	}
	return b, nil
}

func parseError(name string, err error) error {
	return fmt.Errorf("unable to parse param '%s': %w", name, err)
}

// parseTags merges tag=key:value parameters (the value may hold colons)
// and, over them, tags= JSON objects of strings.
func parseTags(simple, jsonTags []string) (map[string]string, error) {
	out := map[string]string{}
	for _, t := range simple {
		k, v, ok := strings.Cut(t, ":")
		if !ok {
			return nil, fmt.Errorf("malformed 'tag' parameter, expecting key:value, received: %s", t)
		}
		out[k] = v
	}
	for _, t := range jsonTags {
		var m map[string]string
		if err := json.Unmarshal([]byte(t), &m); err != nil {
			return nil, fmt.Errorf("malformed 'tags' parameter, cannot unmarshal JSON: %w", err)
		}
		maps.Copy(out, m)
	}
	return out, nil
}

// parseTraceID parses a trace ID as Jaeger does: 1 to 32 hex digits, the
// last 16 the low half (so a 64-bit ID may be given in 16 digits or
// fewer). Zero is a valid ID (of no trace).
func parseTraceID(s string) (traceID, error) {
	var id traceID
	var err error
	switch {
	case len(s) > 32:
		return traceID{}, fmt.Errorf("TraceID cannot be longer than 32 hex characters: %s", s)
	case len(s) > 16:
		hiLen := len(s) - 16
		if id.high, err = strconv.ParseUint(s[:hiLen], 16, 64); err != nil {
			return traceID{}, err
		}
		if id.low, err = strconv.ParseUint(s[hiLen:], 16, 64); err != nil {
			return traceID{}, err
		}
	default:
		if id.low, err = strconv.ParseUint(s, 16, 64); err != nil {
			return traceID{}, err
		}
	}
	return id, nil
}

// storeID is the 16-byte ID the store keeps the trace under.
func (t traceID) storeID() store.TraceID {
	var id store.TraceID
	binary.BigEndian.PutUint64(id[:8], t.high)
	binary.BigEndian.PutUint64(id[8:], t.low)
	return id
}
