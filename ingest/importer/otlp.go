package importer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/ingest/otlpjson"
	"github.com/flowscope/flowscope/otlpwire"
	"github.com/flowscope/flowscope/store"
)

// otlpObject handles one OTLP/JSON object found at pos.
type otlpObject func(data []byte, pos objPos) error

// objPos is where an OTLP/JSON object starts: a line of JSON Lines input
// (line ≥ 1), or the whole input (line 0); off is its byte offset.
type objPos struct {
	line int
	off  int64
}

// String returns "line 3 (byte 120)", or "" for the whole input.
func (p objPos) String() string {
	if p.line == 0 {
		return ""
	}
	return fmt.Sprintf("line %d (byte %d)", p.line, p.off)
}

// importOTLP imports OTLP/JSON traces or metrics: one object, or JSON
// Lines of objects, read twice.
func (im *importer) importOTLP(src *source, f Format) error {
	var pass1, pass2 otlpObject
	if f == FormatOTLPTraces {
		im.traceIDs = newRecentSet(keepTraceIDs)
		visit := im.collectVisitor()
		pass1 = func(data []byte, pos objPos) error {
			return im.tracesObject(data, pos, func(req []byte, spans int64) error {
				if err := walkTraces(req, visit); err != nil {
					return fmt.Errorf("BUG: walk encoded request: %w", err)
				}
				im.sum.Spans += spans
				im.sum.OTLPSpans += spans
				im.progSpans += spans
				return nil
			})
		}
		pass2 = func(data []byte, pos objPos) error {
			return im.tracesObject(data, pos, im.sendTraces)
		}
	} else {
		pass1 = im.metricsObject1
		pass2 = im.metricsObject2
	}
	if err := im.readOTLP(src.r, f, pass1); err != nil {
		return err
	}
	im.sum.Bytes = im.read
	if err := im.computeShift(); err != nil {
		return err
	}
	src2, err := im.startPass2(true)
	if err != nil {
		return err
	}
	defer src2.Close()
	if err := im.readOTLP(src2.r, f, pass2); err != nil {
		return im.decodeErr(err)
	}
	im.progress(true)
	if im.sum.SentSpans != im.sum.OTLPSpans || im.sum.SentPoints != im.sum.MetricPoints {
		return fmt.Errorf("the input changed between the passes: %d spans and %d points checked, %d and %d sent",
			im.sum.OTLPSpans, im.sum.MetricPoints, im.sum.SentSpans, im.sum.SentPoints)
	}
	return nil
}

var bom = []byte("\xef\xbb\xbf")

// readOTLP reads OTLP/JSON from r and calls each for every object. When
// the first non-blank line is a JSON value cut short (like the "{" of a
// pretty-printed object), the whole input (at most Options.MaxReadBytes)
// is one object. Otherwise the input is JSON Lines: every non-blank line
// is an object.
func (im *importer) readOTLP(r *bufio.Reader, f Format, each otlpObject) error {
	limit := im.opts.maxRead()
	var off int64
	if b, _ := r.Peek(len(bom)); bytes.Equal(b, bom) {
		r.Discard(len(bom))
		off = int64(len(bom))
	}
	start := off
	var pre []byte // blank lines before the first object
	var buf []byte
	objects := 0
	for line := 1; ; line++ {
		l, nl, err := readLine(r, buf[:0], limit)
		buf = l
		if errors.Is(err, errTooLong) {
			return invalidf("%s: line %d (byte %d) is longer than %d bytes", f, line, off, limit)
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read line %d: %w", line, err)
		}
		lineOff := off
		off += int64(len(l))
		if nl {
			off++
		}
		t := bytes.TrimSpace(l)
		switch {
		case len(t) == 0:
			if objects == 0 {
				pre = append(append(pre, l...), '\n')
			}
		case objects == 0 && !json.Valid(t) && continues(t):
			return im.wholeOTLP(r, f, append(append(pre, l...), '\n'), objPos{off: start}, each)
		case t[0] != '{':
			return invalidf("%s: line %d (byte %d): want a JSON object, got %s", f, line, lineOff, quoteStart(t, 40))
		default:
			objects++
			lead := int64(len(l) - len(bytes.TrimLeft(l, " \t\r")))
			if err := each(t, objPos{line: line, off: lineOff + lead}); err != nil {
				return err
			}
		}
		if err == io.EOF {
			break
		}
	}
	if objects == 0 {
		return invalidf("%s: empty input", f)
	}
	return nil
}

// continues reports whether the invalid JSON line t is only cut short,
// as the first line of a pretty-printed object is (rather than broken
// before its end).
func continues(t []byte) bool {
	var v json.RawMessage
	var se *json.SyntaxError
	return errors.As(json.Unmarshal(t, &v), &se) && se.Offset >= int64(len(t))
}

// wholeOTLP reads the rest of r after the start already read, and
// handles it all as one object.
func (im *importer) wholeOTLP(r io.Reader, f Format, start []byte, pos objPos, each otlpObject) error {
	limit := im.opts.maxRead()
	rest, err := io.ReadAll(io.LimitReader(r, limit-int64(len(start))+1))
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if int64(len(start)+len(rest)) > limit {
		return invalidf("%s: a single JSON object larger than %d bytes (use JSON Lines, one object per line, for larger files)", f, limit)
	}
	return each(append(start, rest...), pos)
}

// errTooLong is returned by readLine for a line over the limit.
var errTooLong = errors.New("line too long")

// readLine reads a line into buf without its "\n", reporting whether the
// newline was there. It returns io.EOF with the last line.
func readLine(r *bufio.Reader, buf []byte, limit int64) (line []byte, newline bool, err error) {
	for {
		frag, err := r.ReadSlice('\n')
		buf = append(buf, frag...)
		if int64(len(buf)) > limit+1 {
			return buf, false, errTooLong
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err != nil:
			return buf, false, err
		}
		return buf[:len(buf)-1], true, nil
	}
}

// lineColumn matches the position in protojson's messages.
var lineColumn = regexp.MustCompile(`\(line 1:(\d+)\)`)

// jsonErr is the input error for the OTLP/JSON object data at pos that
// does not decode.
func jsonErr(f Format, pos objPos, data []byte, err error) error {
	msg := err.Error()
	if msg == io.ErrUnexpectedEOF.Error() {
		msg = fmt.Sprintf("the JSON object is cut short at byte %d", pos.off+int64(len(data)))
	}
	if pos.line == 0 {
		return invalidf("%s: %s", f, msg)
	}
	// A JSON Lines object is on one line: protojson's line is always 1.
	return invalidf("%s: %v: %s", f, pos, lineColumn.ReplaceAllString(msg, "(column $1)"))
}

// tracesObject decodes one OTLP/JSON traces object, checks its spans and
// passes it on in requests of at most Options.BatchSpans spans.
func (im *importer) tracesObject(data []byte, pos objPos, emit func(req []byte, spans int64) error) error {
	req, err := otlpjson.UnmarshalTraces(data)
	if err != nil {
		return jsonErr(FormatOTLPTraces, pos, data, err)
	}
	if err := checkSpans(req, uint64(im.opts.Now().Add(store.MaxFutureSkew).UnixNano())); err != nil {
		if pos.line > 0 {
			return invalidf("%s: %v: %v", FormatOTLPTraces, pos, err)
		}
		return invalidf("%s: %v", FormatOTLPTraces, err)
	}
	if err := checkDecodable(req, otlpwire.ValidateTraces); err != nil {
		return invalidf("%s: %v: %v", FormatOTLPTraces, pos, err)
	}
	return splitTraces(req, im.opts.batch(), func(part *coltracepb.ExportTraceServiceRequest, spans int) error {
		b, err := proto.Marshal(part)
		if err != nil {
			return fmt.Errorf("encode traces: %w", err)
		}
		return emit(b, int64(spans))
	})
}

// checkSpans checks what the store would reject span by span: IDs, name,
// start and end time, an end later than latestEnd (Unix ns).
func checkSpans(req *coltracepb.ExportTraceServiceRequest, latestEnd uint64) error {
	for i, rs := range req.ResourceSpans {
		for j, ss := range rs.ScopeSpans {
			for k, sp := range ss.Spans {
				if msg := spanProblem(sp, latestEnd); msg != "" {
					return fmt.Errorf("resourceSpans[%d].scopeSpans[%d].spans[%d] (%q): %s", i, j, k, clip(sp.Name), msg)
				}
			}
		}
	}
	return nil
}

// spanProblem names what makes a span invalid, or returns "".
func spanProblem(sp *tracepb.Span, latestEnd uint64) string {
	switch {
	case len(sp.TraceId) != 16:
		return "traceId is not 32 hex digits"
	case isZero(sp.TraceId):
		return "traceId is all zeros"
	case len(sp.SpanId) != 8:
		return "spanId is not 16 hex digits"
	case isZero(sp.SpanId):
		return "spanId is all zeros"
	case len(sp.ParentSpanId) != 0 && len(sp.ParentSpanId) != 8:
		return "parentSpanId is not 16 hex digits"
	case sp.Name == "":
		return "name is missing"
	case sp.StartTimeUnixNano == 0:
		return "startTimeUnixNano is missing"
	case sp.EndTimeUnixNano < sp.StartTimeUnixNano:
		return "endTimeUnixNano is before startTimeUnixNano"
	case sp.EndTimeUnixNano > latestEnd:
		return fmt.Sprintf("endTimeUnixNano is more than %s ahead of the clock (the store refuses such spans)", store.MaxFutureSkew)
	}
	return ""
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// splitTraces calls emit with requests of at most max spans holding the
// spans of req in order, sharing req's resources and scopes.
func splitTraces(req *coltracepb.ExportTraceServiceRequest, max int, emit func(*coltracepb.ExportTraceServiceRequest, int) error) error {
	out := &coltracepb.ExportTraceServiceRequest{}
	n := 0
	var lastRS *tracepb.ResourceSpans // the input ResourceSpans of out's last one
	flush := func() error {
		if n == 0 {
			return nil
		}
		err := emit(out, n)
		out, n, lastRS = &coltracepb.ExportTraceServiceRequest{}, 0, nil
		return err
	}
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			spans := ss.Spans
			for len(spans) > 0 {
				take := min(max-n, len(spans))
				part := &tracepb.ScopeSpans{Scope: ss.Scope, SchemaUrl: ss.SchemaUrl, Spans: spans[:take]}
				if lastRS != rs {
					out.ResourceSpans = append(out.ResourceSpans, &tracepb.ResourceSpans{Resource: rs.Resource, SchemaUrl: rs.SchemaUrl})
					lastRS = rs
				}
				cur := out.ResourceSpans[len(out.ResourceSpans)-1]
				cur.ScopeSpans = append(cur.ScopeSpans, part)
				n += take
				spans = spans[take:]
				if n == max {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
	}
	return flush()
}

// metricsObject1 checks one OTLP/JSON metrics object and records its
// points, services and times (pass 1).
func (im *importer) metricsObject1(data []byte, pos objPos) error {
	req, err := otlpjson.UnmarshalMetrics(data)
	if err != nil {
		return jsonErr(FormatOTLPMetrics, pos, data, err)
	}
	if err := checkDecodable(req, otlpwire.ValidateMetrics); err != nil {
		return invalidf("%s: %v: %v", FormatOTLPMetrics, pos, err)
	}
	im.collectMetrics(req)
	return nil
}

// checkDecodable checks that req, once encoded, is what the receivers
// accept (otlpwire's validator: nesting at most otlpwire.MaxDepth deep;
// the JSON decoder accepts far deeper nesting), so that an imported
// object is stored only if every client can read it back.
func checkDecodable(req proto.Message, validate func([]byte) error) error {
	b, err := proto.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return validate(b)
}

// collectMetrics records the points, services and times of a metrics
// request.
func (im *importer) collectMetrics(req *colmetricspb.ExportMetricsServiceRequest) {
	points := metricTimes(req, func(t *uint64) { im.addTime(int64(*t)) })
	im.sum.MetricPoints += points
	im.progPoints += points
	for _, rm := range req.ResourceMetrics {
		for _, kv := range rm.GetResource().GetAttributes() {
			if s := kv.GetValue().GetStringValue(); kv.Key == attrServiceName && s != "" {
				im.addService([]byte(s))
			}
		}
	}
}

// metricsObject2 shifts and sends one OTLP/JSON metrics object (pass 2).
func (im *importer) metricsObject2(data []byte, pos objPos) error {
	req, err := otlpjson.UnmarshalMetrics(data)
	if err != nil {
		return jsonErr(FormatOTLPMetrics, pos, data, err)
	}
	if im.shift != 0 {
		metricTimes(req, func(t *uint64) { *t = uint64(int64(*t) + im.shift) })
	}
	return splitMetrics(req, im.opts.batch(), func(part *colmetricspb.ExportMetricsServiceRequest, points int) error {
		return im.sendMetrics(part, int64(points))
	})
}

// sendMetrics encodes and sends a metrics request.
func (im *importer) sendMetrics(req *colmetricspb.ExportMetricsServiceRequest, points int64) error {
	b, err := proto.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode metrics: %w", err)
	}
	return im.deliver(func(ctx context.Context) (ingest.Result, error) {
		return im.sink.ConsumeMetrics(ctx, b)
	}, 0, points)
}

// pointCount returns the number of data points of m.
func pointCount(m *metricspb.Metric) int {
	return len(m.GetGauge().GetDataPoints()) + len(m.GetSum().GetDataPoints()) +
		len(m.GetHistogram().GetDataPoints()) + len(m.GetExponentialHistogram().GetDataPoints()) +
		len(m.GetSummary().GetDataPoints())
}

// splitMetrics calls emit with requests of whole metrics holding at most
// max points (a metric with more points goes alone), in order.
func splitMetrics(req *colmetricspb.ExportMetricsServiceRequest, max int, emit func(*colmetricspb.ExportMetricsServiceRequest, int) error) error {
	out := &colmetricspb.ExportMetricsServiceRequest{}
	n := 0
	var lastRM *metricspb.ResourceMetrics
	var lastSM *metricspb.ScopeMetrics
	flush := func() error {
		if n == 0 {
			return nil
		}
		err := emit(out, n)
		out, n, lastRM, lastSM = &colmetricspb.ExportMetricsServiceRequest{}, 0, nil, nil
		return err
	}
	for _, rm := range req.ResourceMetrics {
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				p := pointCount(m)
				if p == 0 {
					continue
				}
				if n > 0 && n+p > max {
					if err := flush(); err != nil {
						return err
					}
				}
				if lastRM != rm {
					out.ResourceMetrics = append(out.ResourceMetrics, &metricspb.ResourceMetrics{Resource: rm.Resource, SchemaUrl: rm.SchemaUrl})
					lastRM, lastSM = rm, nil
				}
				cur := out.ResourceMetrics[len(out.ResourceMetrics)-1]
				if lastSM != sm {
					cur.ScopeMetrics = append(cur.ScopeMetrics, &metricspb.ScopeMetrics{Scope: sm.Scope, SchemaUrl: sm.SchemaUrl})
					lastSM = sm
				}
				curSM := cur.ScopeMetrics[len(cur.ScopeMetrics)-1]
				curSM.Metrics = append(curSM.Metrics, m)
				n += p
			}
		}
	}
	return flush()
}
