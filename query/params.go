package query

import (
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/query/querypb"
	"github.com/flowscope/flowscope/store"
)

// DefaultQuantiles are the quantiles reported when a GetMetric or GetLatency
// request names none. Do not modify.
var DefaultQuantiles = []float64{0.5, 0.9, 0.99, 0.999}

// invalidArgf returns an InvalidArgument status error. Messages start with
// "invalid NAME" or "missing NAME", NAME being the request parameter as
// spelled on REST.
func invalidArgf(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// ParseTraceID parses a trace ID of 32 hex digits, or of 16 (a 64-bit
// Zipkin-style ID, which is left-padded with zeros to 32, the form the store
// keeps it in). Upper-case digits are accepted. An all-zero ID is invalid.
func ParseTraceID(s string) (store.TraceID, error) {
	var id store.TraceID
	var src string
	switch len(s) {
	case 32:
		src = s
	case 16:
		src = strings.Repeat("0", 16) + s
	default:
		return id, fmt.Errorf("invalid traceId %q: want 32 or 16 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(src)); err != nil {
		return id, fmt.Errorf("invalid traceId %q: want 32 or 16 hex digits", s)
	}
	if id == (store.TraceID{}) {
		return id, fmt.Errorf("invalid traceId %q: all zeros", s)
	}
	return id, nil
}

// parseTime parses the time parameter param: RFC 3339 (fractional seconds
// allowed) or Unix milliseconds written with digits only. Empty gives the
// zero time.
func parseTime(param, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if isDigits(s) {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms > math.MaxInt64/int64(time.Millisecond) {
			return time.Time{}, invalidArgf("invalid %s %q: Unix milliseconds out of range", param, s)
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalidArgf("invalid %s %q: want RFC 3339 or Unix milliseconds", param, s)
	}
	return t, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// parseRange parses the start and end parameters. A missing end is now, a
// missing start is end - DefaultRange. An end before start is invalid.
func parseRange(startParam, endParam string, now time.Time) (start, end time.Time, err error) {
	if start, err = parseTime("start", startParam); err != nil {
		return start, end, err
	}
	if end, err = parseTime("end", endParam); err != nil {
		return start, end, err
	}
	if end.IsZero() {
		end = now
	}
	if start.IsZero() {
		start = end.Add(-DefaultRange)
	}
	if end.Before(start) {
		return start, end, invalidArgf("invalid end %s: before start %s",
			end.Format(time.RFC3339Nano), start.Format(time.RFC3339Nano))
	}
	return start, end, nil
}

// parseLimit applies the search limit rules: 0 means
// store.DefaultSearchLimit, the maximum is store.MaxSearchLimit.
func parseLimit(limit int32) (int, error) {
	switch {
	case limit == 0:
		return store.DefaultSearchLimit, nil
	case limit < 0:
		return 0, invalidArgf("invalid limit %d: must be positive", limit)
	case limit > store.MaxSearchLimit:
		return 0, invalidArgf("invalid limit %d: must be at most %d", limit, store.MaxSearchLimit)
	}
	return int(limit), nil
}

// parseDuration parses a duration parameter written as a Go duration
// ("250us", "150ms", "1.5s"). Empty gives 0 (no bound).
func parseDuration(param, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, invalidArgf("invalid %s %q: want a duration such as 250us, 150ms or 1.5s", param, s)
	}
	if d < 0 {
		return 0, invalidArgf("invalid %s %q: must not be negative", param, s)
	}
	return d, nil
}

// traceQuery validates a search request and converts it to a store query.
func traceQuery(req *querypb.SearchTracesRequest, now time.Time) (store.TraceQuery, error) {
	var q store.TraceQuery
	var err error
	if q.Start, q.End, err = parseRange(req.GetStart(), req.GetEnd(), now); err != nil {
		return q, err
	}
	if q.MinDuration, err = parseDuration("minDuration", req.GetMinDuration()); err != nil {
		return q, err
	}
	if q.MaxDuration, err = parseDuration("maxDuration", req.GetMaxDuration()); err != nil {
		return q, err
	}
	if q.MaxDuration != 0 && q.MaxDuration < q.MinDuration {
		return q, invalidArgf("invalid maxDuration %q: less than minDuration %q", req.GetMaxDuration(), req.GetMinDuration())
	}
	if q.Limit, err = parseLimit(req.GetLimit()); err != nil {
		return q, err
	}
	if len(req.GetAttributes()) > 0 {
		q.Attributes = make(map[string]string, len(req.GetAttributes()))
		for k, v := range req.GetAttributes() {
			if k == "" {
				return q, invalidArgf("invalid attributes: empty key")
			}
			q.Attributes[k] = v
		}
	}
	if q.Status, err = parseStatus(req.GetStatus()); err != nil {
		return q, err
	}
	q.Service = req.GetService()
	q.Operation = req.GetOperation()
	q.Source, q.Target = req.GetSource(), req.GetTarget()
	switch {
	case (q.Source == "") != (q.Target == ""):
		return q, invalidArgf("invalid edge: source %q and target %q must be given together", q.Source, q.Target)
	case q.Source != "" && q.Service != "":
		return q, invalidArgf("invalid service %q: a search by service or by edge (source and target), not both", q.Service)
	}
	return q, nil
}

// parseStatus parses the status parameter of SearchTraces: "error", "ok",
// or "" (any).
func parseStatus(s string) (store.TraceStatus, error) {
	switch st := store.TraceStatus(s); st {
	case store.TraceStatusAny, store.TraceStatusError, store.TraceStatusOK:
		return st, nil
	}
	return "", invalidArgf("invalid status %q: want error or ok (omit it for any status)", s)
}

// parseQuantiles validates requested quantiles (fractions in [0, 1]) or
// returns DefaultQuantiles when none are given.
func parseQuantiles(qs []float64) ([]float64, error) {
	if len(qs) == 0 {
		return slices.Clone(DefaultQuantiles), nil
	}
	for _, q := range qs {
		if !(q >= 0 && q <= 1) { // also rejects NaN
			return nil, invalidArgf("invalid quantiles %v: must be a fraction in [0, 1]", q)
		}
	}
	return qs, nil
}

// Values of the format parameter of GetFlowGraph and GetLatency. The empty
// string means FormatJSON.
const (
	// FormatJSON is the API's own JSON (the default).
	FormatJSON = "json"
	// FormatVizceral is Vizceral's traffic-graph JSON (GetFlowGraph only).
	FormatVizceral = "vizceral"
	// FormatHDRLog is the HdrHistogram interval log format, as text/plain
	// (GetLatency only).
	FormatHDRLog = "hdrlog"
	// FormatGuesstimate is a spigo Guesstimate space of latency samples,
	// a .guess file (GetLatency only).
	FormatGuesstimate = "guesstimate"
)

// Bounds of the samples parameter of GetLatency with format=guesstimate.
const (
	// DefaultGuessSamples is the most samples written when the request
	// names no limit.
	DefaultGuessSamples = 10_000
	// MaxGuessSamples is the largest limit a request may name.
	MaxGuessSamples = 100_000
)

// StepUnit is the granularity of latency series: a step must be a positive
// multiple of it, because rollup windows are persisted at this width.
const StepUnit = 10 * time.Second

// MaxSteps is the largest number of steps a latency series may have; a
// smaller step over the same range is rejected rather than truncated.
const MaxSteps = 11_000

// parseFormat parses the format parameter: "" or FormatJSON, or one of extra.
func parseFormat(s string, extra ...string) (string, error) {
	if s == "" || s == FormatJSON {
		return FormatJSON, nil
	}
	if slices.Contains(extra, s) {
		return s, nil
	}
	want := append([]string{FormatJSON}, extra...)
	return "", invalidArgf("invalid format %q: want %s", s, strings.Join(want, " or "))
}

// parseLevel parses the level parameter with aggregate.ParseLevel; ""
// means aggregate.LevelService.
func parseLevel(s string) (aggregate.Level, error) {
	l, err := aggregate.ParseLevel(s)
	if err != nil {
		return 0, invalidArgf("invalid level %q: want service, instance, zone, region or namespace", s)
	}
	return l, nil
}

// parseKind parses the kind parameter of GetLatency; "" means
// aggregate.KindServer.
func parseKind(s string) (aggregate.KindFilter, error) {
	switch s {
	case "", "server":
		return aggregate.KindServer, nil
	case "client":
		return aggregate.KindClient, nil
	case "internal":
		return aggregate.KindInternal, nil
	case "all":
		return aggregate.KindAll, nil
	}
	return 0, invalidArgf("invalid kind %q: want server, client, internal or all", s)
}

// parseStep parses the step parameter, a Go duration that is a positive
// multiple of StepUnit, and checks that [start, end] holds at most MaxSteps
// steps. Empty gives 0 (no series).
func parseStep(s string, start, end time.Time) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, invalidArgf("invalid step %q: want a duration such as 10s, 1m or 1h", s)
	}
	if d < StepUnit || d%StepUnit != 0 {
		return 0, invalidArgf("invalid step %q: must be a multiple of %v", s, StepUnit)
	}
	if n := end.Sub(start) / d; n >= MaxSteps {
		return 0, invalidArgf("invalid step %q: more than %d steps in the range", s, MaxSteps)
	}
	return d, nil
}

// graphParams is a validated GetFlowGraph request.
type graphParams struct {
	start, end time.Time
	q          aggregate.GraphQuery
	format     string
	// compare is the name of the declared architecture to compare with, ""
	// for none.
	compare string
}

// graphRequest validates a GetFlowGraph request.
func graphRequest(req *querypb.GetFlowGraphRequest, now time.Time) (graphParams, error) {
	var p graphParams
	var err error
	if p.start, p.end, err = parseRange(req.GetStart(), req.GetEnd(), now); err != nil {
		return p, err
	}
	if p.q.Level, err = parseLevel(req.GetLevel()); err != nil {
		return p, err
	}
	if p.format, err = parseFormat(req.GetFormat(), FormatVizceral); err != nil {
		return p, err
	}
	p.q.Operation = req.GetOperation()
	p.compare = req.GetCompare()
	if p.compare != "" && p.format == FormatVizceral {
		return p, invalidArgf("invalid compare %q: not supported with format=vizceral", p.compare)
	}
	return p, nil
}

// latencyParams is a validated GetLatency request.
type latencyParams struct {
	start, end time.Time
	q          aggregate.LatencyQuery
	// quantiles in the order requested.
	quantiles []float64
	step      time.Duration
	format    string
	// samples is the most samples of a Guesstimate export; arch the name
	// of its space ("" for the selection). Set with FormatGuesstimate only.
	samples int
	arch    string
}

// latencyRequest validates a GetLatency request. It needs either service,
// or source and target together; kind goes only with service and level only
// with source and target.
func latencyRequest(req *querypb.GetLatencyRequest, now time.Time) (latencyParams, error) {
	var p latencyParams
	var err error
	if p.start, p.end, err = parseRange(req.GetStart(), req.GetEnd(), now); err != nil {
		return p, err
	}
	service, source, target := req.GetService(), req.GetSource(), req.GetTarget()
	switch {
	case service != "" && (source != "" || target != ""):
		return p, invalidArgf("invalid service %q: give either service, or source and target, not both", service)
	case service == "" && source == "" && target == "":
		return p, invalidArgf("missing service, or source and target")
	case service == "" && source == "":
		return p, invalidArgf("missing source: target %q needs a source", target)
	case service == "" && target == "":
		return p, invalidArgf("missing target: source %q needs a target", source)
	}
	if service != "" {
		if req.GetLevel() != "" {
			return p, invalidArgf("invalid level %q: level applies to source and target, not to service", req.GetLevel())
		}
		if p.q.Kind, err = parseKind(req.GetKind()); err != nil {
			return p, err
		}
	} else {
		if req.GetKind() != "" {
			return p, invalidArgf("invalid kind %q: kind applies to service; an edge uses client-side durations", req.GetKind())
		}
		if p.q.Level, err = parseLevel(req.GetLevel()); err != nil {
			return p, err
		}
	}
	if p.quantiles, err = parseQuantiles(req.GetQuantiles()); err != nil {
		return p, err
	}
	if p.step, err = parseStep(req.GetStep(), p.start, p.end); err != nil {
		return p, err
	}
	if p.format, err = parseFormat(req.GetFormat(), FormatHDRLog, FormatGuesstimate); err != nil {
		return p, err
	}
	if p.samples, p.arch, err = parseGuessParams(req, p.format); err != nil {
		return p, err
	}
	p.q.Service, p.q.Operation = service, req.GetOperation()
	p.q.Source, p.q.Target = source, target
	p.q.Step = int64(p.step / time.Second)
	return p, nil
}

// parseGuessParams validates the samples and arch parameters of GetLatency,
// which apply to format=guesstimate only: samples in [1, MaxGuessSamples],
// 0 meaning DefaultGuessSamples; arch a name without dots (it becomes the
// arch part of spigo actor names).
func parseGuessParams(req *querypb.GetLatencyRequest, format string) (samples int, arch string, err error) {
	n, arch := req.GetSamples(), req.GetArch()
	if format != FormatGuesstimate {
		switch {
		case n != 0:
			return 0, "", invalidArgf("invalid samples %d: applies to format=guesstimate only", n)
		case arch != "":
			return 0, "", invalidArgf("invalid arch %q: applies to format=guesstimate only", arch)
		}
		return 0, "", nil
	}
	switch {
	case n == 0:
		n = DefaultGuessSamples
	case n < 0 || n > MaxGuessSamples:
		return 0, "", invalidArgf("invalid samples %d: must be 1 to %d", n, MaxGuessSamples)
	}
	if strings.Contains(arch, ".") {
		return 0, "", invalidArgf("invalid arch %q: must not contain dots (it is a part of spigo actor names)", arch)
	}
	return int(n), arch, nil
}
