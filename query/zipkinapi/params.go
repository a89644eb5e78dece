package zipkinapi

import (
	"encoding/hex"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flowscope/flowscope/store"
)

// badRequest is an invalid request: 400 with Msg as the text body, as
// Zipkin answers an IllegalArgumentException.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badRequestf(msg string) error { return &badRequest{msg: msg} }

// Query limits.
const (
	// DefaultLimit is the number of traces /api/v2/traces returns without
	// a limit parameter (Zipkin's default).
	DefaultLimit = 10
	// MaxLimit is the largest limit honoured; larger ones are capped
	// (Zipkin has none; the store answers at most store.MaxSearchLimit).
	MaxLimit = store.MaxSearchLimit
	// maxTraceIDs is the most pieces of a traceMany traceIds parameter
	// (Zipkin splits with a limit of 1000: the last piece keeps the rest,
	// commas and all, and fails validation).
	maxTraceIDs = 1000
	// maxAnnotationTerms is the most pieces of an annotationQuery
	// (Zipkin splits with a limit of 100, the last piece keeping the rest).
	maxAnnotationTerms = 100
)

// term is one condition of an annotationQuery: a key alone (Value empty)
// matches a span with an annotation of that value or a tag of that key; a
// key=value pair matches a span whose tag Key equals Value.
type term struct {
	Key, Value string
}

// traceQuery is a validated /api/v2/traces request, in Zipkin's units.
type traceQuery struct {
	// ServiceName, RemoteServiceName and SpanName are lower-cased; empty
	// means no condition (a span name of "all" is none too).
	ServiceName, RemoteServiceName, SpanName string
	// Annotations are the annotationQuery terms, in order, keys unique.
	Annotations []term
	// MinDuration and MaxDuration are in microseconds; 0 means none.
	MinDuration, MaxDuration int64
	// EndTs and Lookback are in milliseconds; both are positive.
	EndTs, Lookback int64
	// Limit is the most traces returned, in [1, MaxLimit].
	Limit int
}

// queryParam returns the first value of parameter name and whether the
// request has it (Armeria reads the first value of a repeated parameter).
func queryParam(v url.Values, name string) (string, bool) {
	vs, ok := v[name]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// requiredParam returns parameter name or Armeria's 400 message for a
// missing mandatory parameter.
func requiredParam(v url.Values, name string) (string, error) {
	s, ok := queryParam(v, name)
	if !ok {
		return "", badRequestf("Mandatory parameter/header is missing: " + name)
	}
	return s, nil
}

// parseLong parses a Java long as Long.parseLong does (an optional sign,
// decimal digits), with its exception message on failure.
func parseLong(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, badRequestf(`For input string: "` + s + `"`)
	}
	return n, nil
}

// parseInt parses a Java int as Integer.parseInt does.
func parseInt(s string) (int, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, badRequestf(`For input string: "` + s + `"`)
	}
	return int(n), nil
}

// optionalLong reads an optional long parameter; ok is false when absent.
// An empty value is invalid, as in Zipkin (Long.parseLong("") fails).
func optionalLong(v url.Values, name string) (n int64, ok bool, err error) {
	s, ok := queryParam(v, name)
	if !ok {
		return 0, false, nil
	}
	n, err = parseLong(s)
	return n, err == nil, err
}

// parseTraceQuery validates the parameters of /api/v2/traces as Zipkin's
// ZipkinQueryApiV2 and QueryRequest.Builder do, in the same order, so
// that the first problem found is the one Zipkin reports. now gives the
// default endTs; lookback is the default lookback.
func parseTraceQuery(v url.Values, now time.Time, lookback time.Duration) (traceQuery, error) {
	var q traceQuery
	q.ServiceName, _ = queryParam(v, "serviceName")
	q.RemoteServiceName, _ = queryParam(v, "remoteServiceName")
	q.SpanName, _ = queryParam(v, "spanName")
	if s, _ := queryParam(v, "annotationQuery"); s != "" {
		q.Annotations = parseAnnotationQuery(s)
	}
	minD, hasMin, err := optionalLong(v, "minDuration")
	if err != nil {
		return q, err
	}
	maxD, hasMax, err := optionalLong(v, "maxDuration")
	if err != nil {
		return q, err
	}
	endTs, hasEnd, err := optionalLong(v, "endTs")
	if err != nil {
		return q, err
	}
	if !hasEnd {
		endTs = now.UnixMilli()
	}
	lb, hasLookback, err := optionalLong(v, "lookback")
	if err != nil {
		return q, err
	}
	if !hasLookback {
		lb = lookback.Milliseconds()
	}
	limit := DefaultLimit
	if s, ok := queryParam(v, "limit"); ok {
		if limit, err = parseInt(s); err != nil {
			return q, err
		}
	}

	// QueryRequest.Builder.build
	q.ServiceName = strings.ToLower(q.ServiceName)
	q.RemoteServiceName = strings.ToLower(q.RemoteServiceName)
	q.SpanName = strings.ToLower(q.SpanName)
	if q.SpanName == "all" {
		q.SpanName = ""
	}
	switch {
	case endTs <= 0:
		return q, badRequestf("endTs <= 0")
	case limit <= 0:
		return q, badRequestf("limit <= 0")
	case lb <= 0:
		return q, badRequestf("lookback <= 0")
	}
	if hasMin {
		if minD <= 0 {
			return q, badRequestf("minDuration <= 0")
		}
		if hasMax && maxD < minD {
			return q, badRequestf("maxDuration < minDuration")
		}
		q.MinDuration = minD
		if hasMax {
			q.MaxDuration = maxD
		}
	} else if hasMax {
		return q, badRequestf("maxDuration is only valid with minDuration")
	}
	q.EndTs, q.Lookback = endTs, lb
	q.Limit = min(limit, MaxLimit)
	return q, nil
}

// parseAnnotationQuery parses an annotationQuery as Zipkin's
// QueryRequest.Builder.parseAnnotationQuery does: terms separated by
// " and " (at most 100, the last keeping the rest), each a key or
// key=value (split at the first '='), trimmed as Java's String.trim
// does. A key=value term replaces an earlier term of the same key (last
// wins); a key alone does not replace an earlier term of its key. Terms
// keep the order of their keys' first appearance. Empty keys are kept:
// as in Zipkin, they match only an empty annotation or tag key.
func parseAnnotationQuery(s string) []term {
	if s == "" {
		return nil
	}
	var out []term
	find := func(k string) int {
		for i := range out {
			if out[i].Key == k {
				return i
			}
		}
		return -1
	}
	for _, ann := range strings.SplitN(s, " and ", maxAnnotationTerms) {
		eq := strings.IndexByte(ann, '=')
		if eq < 0 {
			k := javaTrim(ann)
			if find(k) < 0 {
				out = append(out, term{Key: k})
			}
			continue
		}
		k, v := javaTrim(ann[:eq]), javaTrim(ann[eq+1:])
		if i := find(k); i >= 0 {
			out[i].Value = v
		} else {
			out = append(out, term{Key: k, Value: v})
		}
	}
	return out
}

// javaTrim trims the bytes Java's String.trim removes: every character
// up to U+0020 at either end.
func javaTrim(s string) string {
	i, j := 0, len(s)
	for i < j && s[i] <= ' ' {
		i++
	}
	for j > i && s[j-1] <= ' ' {
		j--
	}
	return s[i:j]
}

// annotationQueryString renders terms back as an annotationQuery
// (QueryRequest.annotationQueryString): parsing it gives the same terms
// when no key or value holds " and " or starts or ends in a space.
func annotationQueryString(terms []term) string {
	var b strings.Builder
	for i, t := range terms {
		if i > 0 {
			b.WriteString(" and ")
		}
		b.WriteString(t.Key)
		if t.Value != "" {
			b.WriteByte('=')
			b.WriteString(t.Value)
		}
	}
	return b.String()
}

// parseTraceID validates and normalizes a trace ID as Zipkin's
// Span.normalizeTraceId does, with the same messages: 1 to 32 hex
// digits, not all zero; fewer than 16 are left-padded to 16, 17 to 31 to
// 32, and a 32-digit ID whose high 16 digits are zero is its low 16.
// Unlike Zipkin, upper-case hex digits are accepted (and lower-cased), as
// our Zipkin receiver accepts them. It returns the ID as stored (a 64-bit
// ID left-padded with zeros) and its normalized text.
func parseTraceID(s string) (store.TraceID, string, error) {
	var id store.TraceID
	switch {
	case s == "":
		return id, "", badRequestf("traceId is empty")
	case len(s) > 32:
		return id, "", badRequestf("traceId.length > 32")
	}
	for i := 0; i < len(s); i++ {
		if _, ok := unhex(s[i]); !ok {
			return id, "", badRequestf(s + " should be lower-hex encoded with no prefix")
		}
	}
	var padded [32]byte
	for i := range padded {
		padded[i] = '0'
	}
	copy(padded[32-len(s):], strings.ToLower(s))
	if _, err := hex.Decode(id[:], padded[:]); err != nil {
		return id, "", badRequestf(s + " should be lower-hex encoded with no prefix")
	}
	if id == (store.TraceID{}) {
		return id, "", badRequestf("traceId is all zeros")
	}
	return id, traceIDString(id), nil
}

// traceIDString is a stored trace ID as Zipkin writes it: 16 hex digits
// when its high 64 bits are zero, else 32.
func traceIDString(id store.TraceID) string {
	if [8]byte(id[:8]) == ([8]byte{}) {
		return hex.EncodeToString(id[8:])
	}
	return hex.EncodeToString(id[:])
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
