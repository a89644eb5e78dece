package promexport

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Metric names (package documentation, "Metrics").
const (
	nameStartTime = "flowscope_red_start_time_seconds"
	nameDropped   = "flowscope_red_series_dropped"
)

// family names the metrics of one entity kind.
type family struct {
	prefix string // flowscope_red_service etc.
	what   string // for HELP texts
	reqs   string // what the request counter counts
	errs   string // what the error counter counts
}

var families = [...]family{
	entityService: {
		prefix: "flowscope_red_service",
		what:   "the service's server-side spans (SERVER and CONSUMER: the flow graph node's requests)",
		reqs:   "Server-side spans (SERVER, CONSUMER) of the service: the requests of its flow-graph node.",
		errs:   "Server-side spans of the service with status ERROR.",
	},
	entityEdge: {
		prefix: "flowscope_red_edge",
		what:   "the calls of the edge, client-side durations (the flow graph edge's calls)",
		reqs:   "Calls from source to target (service level): the calls of the flow-graph edge.",
		errs:   "Calls from source to target that failed (status ERROR on either side).",
	},
	entityOperation: {
		prefix: "flowscope_red_operation",
		what:   "the spans of the operation (span name) of the service, of the kind (server, client, internal)",
		reqs:   "Spans of the operation (span name) of the service, of the kind (server: SERVER, CONSUMER; client: CLIENT, PRODUCER; internal: INTERNAL, UNSPECIFIED).",
		errs:   "Spans of the operation of the service, of the kind, with status ERROR.",
	},
}

// writer renders snapshots in the Prometheus text format 0.0.4.
type writer struct {
	le []string // le label values of the bounds, then "+Inf"
	q  []string // quantile label values
}

func newWriter(bounds []int64, qs []float64) *writer {
	w := &writer{}
	for _, b := range bounds {
		w.le = append(w.le, strconv.FormatFloat(float64(b)/1e9, 'g', -1, 64))
	}
	w.le = append(w.le, "+Inf")
	for _, q := range qs {
		w.q = append(w.q, strconv.FormatFloat(q, 'g', -1, 64))
	}
	return w
}

// write appends the exposition of snap to b.
func (w *writer) write(b []byte, snap *snapshot) []byte {
	b = header(b, nameStartTime, "gauge", "Start (Unix time) of the first 10-second rollup window the flowscope_red counters count.")
	b = append(b, nameStartTime...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, snap.origin, 10)
	b = append(b, '\n')
	b = header(b, nameDropped, "gauge", "Series of services, edges and operations left out of this exposition by red_metrics.max_series.")
	b = append(b, nameDropped...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(snap.dropped), 10)
	b = append(b, '\n')

	// The labels of every entity, `{service="x"` etc. without the closing
	// brace, in one buffer.
	labels := make([][]byte, len(snap.entities))
	var all []byte
	ends := make([]int, len(snap.entities))
	for i := range snap.entities {
		all = entityLabels(all, snap.entities[i].ent)
		ends[i] = len(all)
	}
	for i := range labels {
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		labels[i] = all[start:ends[i]:ends[i]]
	}
	for i := 0; i < len(snap.entities); {
		kind := snap.entities[i].ent.kind
		j := i
		for j < len(snap.entities) && snap.entities[j].ent.kind == kind {
			j++
		}
		b = w.writeKind(b, families[kind], snap.entities[i:j], labels[i:j])
		i = j
	}
	return b
}

func (w *writer) writeKind(b []byte, f family, es []exposed, labels [][]byte) []byte {
	name := f.prefix + "_requests_total"
	b = header(b, name, "counter", f.reqs+" Counted from flowscope_red_start_time_seconds.")
	for i := range es {
		b = sampleInt(b, name, labels[i], "", "", es[i].s.requests)
	}
	name = f.prefix + "_errors_total"
	b = header(b, name, "counter", f.errs+" Counted from flowscope_red_start_time_seconds.")
	for i := range es {
		b = sampleInt(b, name, labels[i], "", "", es[i].s.errors)
	}
	name = f.prefix + "_duration_seconds"
	b = header(b, name, "histogram", "Durations of "+f.what+" with a known duration, from the HDR histograms: a span counts in le when its HDR bucket's highest value is at most le. Counted from flowscope_red_start_time_seconds.")
	bucket, sum, count := name+"_bucket", name+"_sum", name+"_count"
	for i := range es {
		s := es[i].s
		for j, le := range w.le {
			n := s.timed
			if j < len(s.le) {
				n = s.le[j]
			}
			b = sampleInt(b, bucket, labels[i], "le", le, n)
		}
		b = sampleFloat(b, sum, labels[i], "", "", s.sum/1e9)
		b = sampleInt(b, count, labels[i], "", "", s.timed)
	}
	if len(w.q) == 0 {
		return b
	}
	name = f.prefix + "_duration_quantile_seconds"
	b = header(b, name, "summary", "Quantiles of the durations of "+f.what+" over the last red_metrics.quantile_window, from the HDR histograms (nearest rank, as GET /api/v1/latency); NaN without a timed span. No _sum or _count: see the _duration_seconds histogram.")
	for i := range es {
		for j, q := range w.q {
			b = sampleFloat(b, name, labels[i], "quantile", q, es[i].q[j])
		}
	}
	return b
}

// header appends the HELP and TYPE lines of a metric family.
func header(b []byte, name, typ, help string) []byte {
	b = append(b, "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = appendEscaped(b, help, false)
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, typ...)
	return append(b, '\n')
}

// entityLabels appends the labels of e, opening brace included, closing
// brace not.
func entityLabels(b []byte, e entity) []byte {
	b = append(b, '{')
	switch e.kind {
	case entityService:
		b = label(b, "service", e.a)
	case entityEdge:
		b = label(b, "source", e.a)
		b = append(b, ',')
		b = label(b, "target", e.b)
	case entityOperation:
		b = label(b, "service", e.a)
		b = append(b, ',')
		b = label(b, "operation", e.b)
		b = append(b, ',')
		b = label(b, "kind", e.c)
	}
	return b
}

func label(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, `="`...)
	b = appendEscaped(b, value, true)
	return append(b, '"')
}

// sampleStart appends the name and labels of a sample, with an extra label
// when extraName is set, and the space before the value.
func sampleStart(b []byte, name string, labels []byte, extraName, extraValue string) []byte {
	b = append(b, name...)
	b = append(b, labels...)
	if extraName != "" {
		b = append(b, ',')
		b = append(b, extraName...)
		b = append(b, `="`...)
		b = append(b, extraValue...)
		b = append(b, '"')
	}
	return append(b, "} "...)
}

func sampleInt(b []byte, name string, labels []byte, extraName, extraValue string, v int64) []byte {
	b = sampleStart(b, name, labels, extraName, extraValue)
	b = strconv.AppendInt(b, v, 10)
	return append(b, '\n')
}

func sampleFloat(b []byte, name string, labels []byte, extraName, extraValue string, v float64) []byte {
	b = sampleStart(b, name, labels, extraName, extraValue)
	switch {
	case math.IsNaN(v):
		b = append(b, "NaN"...)
	case math.IsInf(v, 1):
		b = append(b, "+Inf"...)
	case math.IsInf(v, -1):
		b = append(b, "-Inf"...)
	default:
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return append(b, '\n')
}

// appendEscaped appends s escaped for the text format: a backslash and a
// line feed always, a double quote in label values. Invalid UTF-8 becomes
// U+FFFD (Prometheus refuses invalid label values).
func appendEscaped(b []byte, s string, labelValue bool) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && labelValue:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}
