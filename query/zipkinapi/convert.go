package zipkinapi

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/ingest/zipkin"
	"github.com/flowscope/flowscope/store"
)

// Attribute keys and tag names of the conversion (OpenTelemetry semantic
// conventions, as the Collector's zipkin exporter reads and writes them).
const (
	attrServiceName     = "service.name"
	attrServicePeerName = "service.peer.name"
	attrPeerService     = "peer.service"
	attrNetPeerAddress  = "network.peer.address"
	attrNetPeerIP       = "net.peer.ip" // older exporters
	attrNetPeerPort     = "net.peer.port"
	attrNetLocalAddress = "network.local.address"
	attrNetHostIP       = "net.host.ip" // older exporters
	attrNetHostPort     = "net.host.port"
	attrServerAddress   = "server.address"
	attrServerPort      = "server.port"
	attrClientAddress   = "client.address"
	attrClientPort      = "client.port"
	attrHTTPStatus      = "http.status_code"
	attrHTTPRespStatus  = "http.response.status_code"

	tagError             = "error"
	tagStatusCode        = "otel.status_code"
	tagStatusDescription = "otel.status_description"
	tagScopeName         = "otel.scope.name"
	tagScopeVersion      = "otel.scope.version"
	tagSpanKind          = "span.kind"
	tagTraceState        = "w3c.tracestate"
	tagLinkPrefix        = "otlp.link."

	// unknownService is the service of a resource without service.name,
	// as the store names it.
	unknownService = "unknown_service"
)

// synthesizedTags are tag keys the conversion writes from something else
// than an attribute of the same key: a search for them cannot be narrowed
// by the store's attribute index.
var synthesizedTags = map[string]bool{
	tagError: true, tagStatusCode: true, tagStatusDescription: true, tagScopeName: true,
	tagScopeVersion: true, tagSpanKind: true, tagTraceState: true, attrHTTPStatus: true,
}

// zspan is a Zipkin v2 span.
type zspan struct {
	TraceID   store.TraceID
	ID        [8]byte
	ParentID  [8]byte
	HasParent bool
	// Kind is CLIENT, SERVER, PRODUCER, CONSUMER or empty.
	Kind string
	// Name is lower-cased, as Zipkin stores it.
	Name string
	// Timestamp and Duration are in microseconds; 0 means absent.
	Timestamp, Duration int64
	Local, Remote       *endpoint
	// Annotations are sorted by timestamp, then value, without duplicates.
	Annotations []annotation
	// Tags are sorted by key.
	Tags   []tag
	Shared bool

	// fromZipkin is set for spans our Zipkin receiver converted (scope
	// "zipkin"): their attributes are their tags as sent.
	fromZipkin bool
}

// endpoint is a Zipkin endpoint; ServiceName is lower-cased.
type endpoint struct {
	ServiceName, IPv4, IPv6 string
	Port                    int
}

// annotation is a Zipkin annotation; Timestamp is in microseconds.
type annotation struct {
	Timestamp int64
	Value     string
}

// tag is a Zipkin tag.
type tag struct {
	Key, Value string
}

// tagValue returns the value of tag key and whether the span has it.
func (s *zspan) tagValue(key string) (string, bool) {
	i, ok := slices.BinarySearchFunc(s.Tags, key, func(t tag, k string) int { return strings.Compare(t.Key, k) })
	if !ok {
		return "", false
	}
	return s.Tags[i].Value, true
}

// localService is the span's local service name ("" without one).
func (s *zspan) localService() string {
	if s.Local == nil {
		return ""
	}
	return s.Local.ServiceName
}

// remoteService is the span's remote service name ("" without one).
func (s *zspan) remoteService() string {
	if s.Remote == nil {
		return ""
	}
	return s.Remote.ServiceName
}

// convertTrace converts the spans of one trace into Zipkin spans, sorted
// by timestamp, and undoes the split of shared spans made by our Zipkin
// receiver (see undoSharedSplit).
func convertTrace(td *tracepb.TracesData) []zspan {
	n := 0
	for _, rs := range td.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	out := make([]zspan, 0, n)
	var c converter
	for _, rs := range td.GetResourceSpans() {
		c.setResource(rs.GetResource())
		for _, ss := range rs.GetScopeSpans() {
			c.setScope(ss.GetScope())
			for _, sp := range ss.GetSpans() {
				if z, ok := c.convert(sp); ok {
					out = append(out, z)
				}
			}
		}
	}
	undoSharedSplit(out)
	slices.SortStableFunc(out, func(a, b zspan) int {
		if c := cmp.Compare(a.Timestamp, b.Timestamp); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	return out
}

// undoSharedSplit turns the SERVER (or CONSUMER) half our Zipkin receiver
// made of a span shared by a client and a server back into Zipkin's
// shared span: a span of scope "zipkin" whose ID is
// zipkin.DerivedSpanID(trace, parent, 1) gets its parent's (the client
// span's) ID, shared: true, and the client span's parent (none when the
// client span is not in the trace). Spans whose parent is such a derived
// ID (the server's children) get the shared ID as parent, as in Zipkin.
func undoSharedSplit(spans []zspan) {
	var derived map[[8]byte][8]byte
	for i := range spans {
		s := &spans[i]
		if s.fromZipkin && (s.Kind == "SERVER" || s.Kind == "CONSUMER") && s.HasParent &&
			s.ID == zipkin.DerivedSpanID(s.TraceID, s.ParentID, 1) {
			if derived == nil {
				derived = make(map[[8]byte][8]byte)
			}
			derived[s.ID] = s.ParentID
			s.Shared = true
		}
	}
	if derived == nil {
		return
	}
	byID := make(map[[8]byte]int, len(spans))
	for i := range spans {
		s := &spans[i]
		if s.Shared {
			continue
		}
		if p, ok := derived[s.ParentID]; ok && s.HasParent {
			s.ParentID = p
		}
		if _, dup := byID[s.ID]; !dup {
			byID[s.ID] = i
		}
	}
	for i := range spans {
		s := &spans[i]
		if !s.Shared {
			continue
		}
		client := derived[s.ID]
		s.ID = client
		s.ParentID, s.HasParent = [8]byte{}, false
		if j, ok := byID[client]; ok && spans[j].HasParent {
			s.ParentID, s.HasParent = spans[j].ParentID, true
		}
	}
}

// converter converts OTLP spans to Zipkin spans, as the OpenTelemetry
// Collector's zipkin exporter does (pkg/translator/zipkin/zipkinv2), and
// spans of our Zipkin receiver back to what was sent. It caches the tags
// of the current resource and scope.
type converter struct {
	service    string
	resTags    []tag // resource attributes but service.name
	fromZipkin bool
	scopeTags  []tag
	tags       map[string]string // scratch
}

func (c *converter) setResource(r *resourcepb.Resource) {
	c.service, c.resTags = "", c.resTags[:0]
	for _, kv := range r.GetAttributes() {
		if kv.GetKey() == attrServiceName {
			c.service = anyString(kv.GetValue())
			continue
		}
		c.resTags = append(c.resTags, tag{kv.GetKey(), anyString(kv.GetValue())})
	}
}

func (c *converter) setScope(sc *commonpb.InstrumentationScope) {
	c.fromZipkin = sc.GetName() == zipkin.ScopeName
	c.scopeTags = c.scopeTags[:0]
	if c.fromZipkin {
		return
	}
	if n := sc.GetName(); n != "" {
		c.scopeTags = append(c.scopeTags, tag{tagScopeName, n})
	}
	if v := sc.GetVersion(); v != "" {
		c.scopeTags = append(c.scopeTags, tag{tagScopeVersion, v})
	}
}

// convertSpan converts one span with its resource and scope.
func convertSpan(r *resourcepb.Resource, sc *commonpb.InstrumentationScope, sp *tracepb.Span) (zspan, bool) {
	var c converter
	c.setResource(r)
	c.setScope(sc)
	return c.convert(sp)
}

// convert converts sp, of the current resource and scope; ok is false
// for a span without valid trace and span IDs.
func (c *converter) convert(sp *tracepb.Span) (z zspan, ok bool) {
	if len(sp.GetTraceId()) != 16 || len(sp.GetSpanId()) != 8 {
		return z, false
	}
	z.TraceID = store.TraceID(sp.GetTraceId())
	z.ID = [8]byte(sp.GetSpanId())
	if p := sp.GetParentSpanId(); len(p) == 8 && [8]byte(p) != ([8]byte{}) {
		z.ParentID, z.HasParent = [8]byte(p), true
	}
	z.fromZipkin = c.fromZipkin
	z.Name = strings.ToLower(sp.GetName())
	z.Kind = kindName(sp.GetKind())
	z.Timestamp = spanTimestamp(sp)

	if c.tags == nil {
		c.tags = make(map[string]string, 16)
	}
	tags := c.tags
	clear(tags)
	for _, t := range c.resTags {
		tags[t.Key] = t.Value
	}
	for _, t := range c.scopeTags {
		tags[t.Key] = t.Value
	}
	for _, kv := range sp.GetAttributes() {
		tags[kv.GetKey()] = anyString(kv.GetValue())
	}
	unknown := tags[zipkin.AttrDurationUnknown] == "true"
	delete(tags, zipkin.AttrDurationUnknown)
	if !unknown {
		z.Duration = spanDuration(sp)
	}

	if c.fromZipkin {
		c.zipkinEndpoints(&z, tags)
	} else {
		c.exporterTags(&z, sp, tags)
	}

	for _, ev := range sp.GetEvents() {
		ts := roundMicros(ev.GetTimeUnixNano())
		if ts <= 0 {
			continue // Zipkin requires an annotation timestamp
		}
		v := ev.GetName()
		if len(ev.GetAttributes()) > 0 || ev.GetDroppedAttributesCount() > 0 {
			v = fmt.Sprintf("%s|%s|%d", v, marshalRaw(rawAttrs(ev.GetAttributes()), true), ev.GetDroppedAttributesCount())
		}
		z.Annotations = append(z.Annotations, annotation{Timestamp: ts, Value: v})
	}
	if len(z.Annotations) > 1 {
		slices.SortFunc(z.Annotations, func(a, b annotation) int {
			if c := cmp.Compare(a.Timestamp, b.Timestamp); c != 0 {
				return c
			}
			return strings.Compare(a.Value, b.Value)
		})
		z.Annotations = slices.Compact(z.Annotations)
	}

	if len(tags) > 0 {
		z.Tags = make([]tag, 0, len(tags))
		for k, v := range tags {
			z.Tags = append(z.Tags, tag{k, v})
		}
		slices.SortFunc(z.Tags, func(a, b tag) int { return strings.Compare(a.Key, b.Key) })
	}
	return z, true
}

// zipkinEndpoints undoes what our Zipkin receiver did with the endpoints
// of a span: the local endpoint is the resource's service, and the remote
// one is peer.service with server.address and server.port (CLIENT,
// PRODUCER) or client.address and client.port (SERVER, CONSUMER); those
// attributes leave the tags. Everything else is a tag as sent.
func (c *converter) zipkinEndpoints(z *zspan, tags map[string]string) {
	if c.service != "" {
		z.Local = &endpoint{ServiceName: strings.ToLower(c.service)}
	}
	var r endpoint
	if v, ok := tags[attrPeerService]; ok {
		r.ServiceName = strings.ToLower(v)
		delete(tags, attrPeerService)
	}
	addrKey, portKey := addressKeys(z.Kind)
	if addrKey != "" {
		if v, ok := tags[addrKey]; ok && setIP(&r, v) {
			delete(tags, addrKey)
		}
		if v, ok := tags[portKey]; ok {
			if p, err := strconv.ParseUint(v, 10, 16); err == nil && p > 0 {
				r.Port = int(p)
				delete(tags, portKey)
			}
		}
	}
	if r != (endpoint{}) {
		z.Remote = &r
	}
}

// addressKeys returns the attributes holding a span's remote address and
// port: the server's for CLIENT and PRODUCER spans, the client's for
// SERVER and CONSUMER spans.
func addressKeys(kind string) (addr, port string) {
	switch kind {
	case "CLIENT", "PRODUCER":
		return attrServerAddress, attrServerPort
	case "SERVER", "CONSUMER":
		return attrClientAddress, attrClientPort
	}
	return "", ""
}

// exporterTags sets the endpoints and the tags of a span from another
// source than our Zipkin receiver as the Collector's zipkin exporter
// does: resource attributes (but service.name), otel.scope.name and
// otel.scope.version, span attributes (winning), http.status_code copied
// from http.response.status_code, w3c.tracestate, span.kind=internal, the
// endpoints' attributes taken out, error and otel.status_code (and
// otel.status_description) from the status, and otlp.link.N for links.
func (c *converter) exporterTags(z *zspan, sp *tracepb.Span, tags map[string]string) {
	if v, ok := tags[attrHTTPRespStatus]; ok {
		if _, ok := tags[attrHTTPStatus]; !ok {
			tags[attrHTTPStatus] = v
		}
	}
	if ts := sp.GetTraceState(); ts != "" {
		tags[tagTraceState] = ts
	}
	if sp.GetKind() == tracepb.Span_SPAN_KIND_INTERNAL {
		tags[tagSpanKind] = "internal"
	}

	service := c.service
	if service == "" {
		service = unknownService
	}
	local := endpoint{ServiceName: strings.ToLower(service)}
	takeIP(&local, tags, attrNetLocalAddress, attrNetHostIP)
	takePort(&local, tags, attrNetHostPort)
	z.Local = &local

	var r endpoint
	if v, ok := tags[attrServicePeerName]; ok {
		r.ServiceName = strings.ToLower(v)
		delete(tags, attrServicePeerName)
	} else if v, ok := tags[attrPeerService]; ok {
		r.ServiceName = strings.ToLower(v)
		delete(tags, attrPeerService)
	}
	hasIP := takeIP(&r, tags, attrNetPeerAddress, attrNetPeerIP)
	takePort(&r, tags, attrNetPeerPort)
	if addrKey, portKey := addressKeys(z.Kind); !hasIP && addrKey != "" {
		// Not in the exporter: an IP address in server.address (or
		// client.address on the server side) is the remote endpoint's,
		// as our Zipkin receiver has it.
		if v, ok := tags[addrKey]; ok && setIP(&r, v) {
			delete(tags, addrKey)
			hasIP = true
			if v, ok := tags[portKey]; ok && r.Port == 0 {
				if p, err := strconv.ParseUint(v, 10, 16); err == nil && p > 0 {
					r.Port = int(p)
					delete(tags, portKey)
				}
			}
		}
	}
	if r.ServiceName != "" || hasIP {
		z.Remote = &r
	}

	switch st := sp.GetStatus(); st.GetCode() {
	case tracepb.Status_STATUS_CODE_ERROR:
		tags[tagError] = "true"
		tags[tagStatusCode] = "ERROR"
	case tracepb.Status_STATUS_CODE_OK:
		delete(tags, tagError)
		tags[tagStatusCode] = "OK"
	default:
		delete(tags, tagError)
	}
	if msg := sp.GetStatus().GetMessage(); msg != "" && sp.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_UNSET {
		tags[tagStatusDescription] = msg
	}

	for i, l := range sp.GetLinks() {
		tid, sid := "", ""
		if t := l.GetTraceId(); len(t) == 16 && [16]byte(t) != ([16]byte{}) {
			tid = hex.EncodeToString(t)
		}
		if s := l.GetSpanId(); len(s) == 8 && [8]byte(s) != ([8]byte{}) {
			sid = hex.EncodeToString(s)
		}
		tags[tagLinkPrefix+strconv.Itoa(i)] = fmt.Sprintf("%s|%s|%s|%s|%d", tid, sid, l.GetTraceState(),
			marshalRaw(rawAttrs(l.GetAttributes()), true), l.GetDroppedAttributesCount())
	}
}

// takeIP sets e's address from the first of keys present in tags (which
// leave the tags, whether they hold an IP address or not, as in the
// exporter); it reports whether e got an address.
func takeIP(e *endpoint, tags map[string]string, keys ...string) bool {
	for _, k := range keys {
		v, ok := tags[k]
		if !ok {
			continue
		}
		delete(tags, k)
		return setIP(e, v)
	}
	return false
}

// takePort sets e's port from tag key (which leaves the tags).
func takePort(e *endpoint, tags map[string]string, key string) {
	v, ok := tags[key]
	if !ok {
		return
	}
	delete(tags, key)
	if p, err := strconv.ParseUint(v, 10, 16); err == nil {
		e.Port = int(p)
	}
}

// setIP sets e's IPv4 (an IPv4 or IPv4-mapped address) or IPv6 address
// from s; it reports false, leaving e, when s is not an IP address.
func setIP(e *endpoint, s string) bool {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return false
	}
	a = a.WithZone("")
	if a.Is4() || a.Is4In6() {
		e.IPv4 = a.Unmap().String()
	} else {
		e.IPv6 = a.String()
	}
	return true
}

func kindName(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "CLIENT"
	case tracepb.Span_SPAN_KIND_SERVER:
		return "SERVER"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "PRODUCER"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "CONSUMER"
	}
	return ""
}

// roundMicros converts Unix nanoseconds to microseconds, rounding half
// up as zipkin-go does.
func roundMicros(ns uint64) int64 {
	if ns > math.MaxInt64-500 {
		return math.MaxInt64 / 1000
	}
	return int64((ns + 500) / 1000)
}

// spanTimestamp is a span's Zipkin timestamp in microseconds (0: none).
func spanTimestamp(sp *tracepb.Span) int64 {
	if sp.GetStartTimeUnixNano() == 0 {
		return 0
	}
	return roundMicros(sp.GetStartTimeUnixNano())
}

// spanDuration is a span's Zipkin duration in microseconds as zipkin-go
// writes it: rounded, and at least 1 when positive; 0 (absent) when its
// end is not after its start.
func spanDuration(sp *tracepb.Span) int64 {
	start, end := sp.GetStartTimeUnixNano(), sp.GetEndTimeUnixNano()
	if end <= start {
		return 0
	}
	return durationMicros(end - start)
}

func durationMicros(ns uint64) int64 {
	if ns < 1000 {
		return 1
	}
	return roundMicros(ns)
}

// anyString renders an attribute value as text as pdata's
// Value.AsString does (the exporter's tag values): strings as they are,
// bools and ints in the usual way, doubles as ECMAScript writes numbers,
// bytes in base64, arrays and maps as JSON.
func anyString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return float64String(x.DoubleValue)
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue, *commonpb.AnyValue_KvlistValue:
		return marshalRaw(rawValue(v), false)
	}
	return ""
}

// float64String formats f as pdata does: like ECMAScript's
// Number.prototype.toString.
func float64String(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b := strconv.AppendFloat(make([]byte, 0, 32), f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return string(b)
}

// rawValue is v as pdata's AsRaw gives it.
func rawValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return x.BytesValue
	case *commonpb.AnyValue_ArrayValue:
		vs := x.ArrayValue.GetValues()
		out := make([]any, len(vs))
		for i, e := range vs {
			out[i] = rawValue(e)
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		return rawAttrs(x.KvlistValue.GetValues())
	}
	return nil
}

func rawAttrs(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = rawValue(kv.GetValue())
	}
	return m
}

// marshalRaw encodes a raw value as JSON: with HTML escaping, as
// json.Marshal (the exporter's events and links), or without (pdata's
// AsString). NaN and infinities, which JSON cannot hold, give "".
func marshalRaw(v any, escapeHTML bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}
