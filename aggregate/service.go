package aggregate

import "github.com/flowscope/flowscope/otlpwire"

// Synthetic nodes: the synthetic-check prober writes its spans (one trace
// per run) with the resource attribute SyntheticCheckAttr naming the check.
// Their node is SyntheticServicePrefix + the check's name, not the
// resource's service.name ("synthetics" for every check), so that the flow
// graph shows each check as its own caller of the services its steps reach.
const (
	// SyntheticCheckAttr is the resource attribute naming the synthetic
	// check a resource's spans belong to.
	SyntheticCheckAttr = "synthetic.check"
	// SyntheticServicePrefix starts the service name of a synthetic node:
	// "synthetic:checkout-journey".
	SyntheticServicePrefix = "synthetic:"
)

// ServiceName returns the service of r's node: SyntheticServicePrefix and
// the value of r's SyntheticCheckAttr attribute when it has one (whatever
// its service.name), otherwise r's service.name, or unknown_service when r
// has none. A SyntheticCheckAttr value that is empty, or so long that the
// name would exceed otlpwire.MaxNameBytes, is ignored.
//
// A synthetic name is appended to buf, which ServiceName returns (grown if
// needed) as its second result for reuse; the name returned for any other
// resource aliases r or package data. Either way the caller must not
// modify the name, and must copy it to keep it past the next use of buf.
// ServiceName does not allocate unless buf is too small.
func ServiceName(buf []byte, r *otlpwire.Resource) (name, scratch []byte) {
	if check := SyntheticCheck(r); check != nil {
		buf = append(append(buf, SyntheticServicePrefix...), check...)
		return buf, buf
	}
	if len(r.Service) == 0 {
		return unknownService, buf
	}
	return r.Service, buf
}

// SyntheticCheck returns the value of r's SyntheticCheckAttr attribute
// (aliasing r), or nil when r has none that ServiceName would use.
func SyntheticCheck(r *otlpwire.Resource) []byte {
	for i := range r.Attrs {
		a := &r.Attrs[i]
		if string(a.Key) != SyntheticCheckAttr {
			continue
		}
		if len(a.Value) == 0 || len(a.Value) > otlpwire.MaxNameBytes-len(SyntheticServicePrefix) {
			return nil
		}
		return a.Value
	}
	return nil
}

// VirtualTarget returns the name an uninstrumented callee of client span
// s gets in flow graphs (DESIGN.md "Flow graph shape"): the value of the
// first present of peer.service, db.namespace, db.name, db.system,
// messaging.destination.name and server.address, looked up on the span,
// then on its resource r; nil when there is none. It aliases s or r.
func VirtualTarget(s *otlpwire.Span, r *otlpwire.Resource) []byte {
	sp, sv := noVirtual, []byte(nil)
	for _, at := range s.Attrs {
		if p := virtualPriority(at.Key); p < sp && len(at.Value) > 0 {
			sp, sv = p, at.Value
		}
	}
	rp, rv := noVirtual, []byte(nil)
	for _, at := range r.Attrs {
		if p := virtualPriority(at.Key); p < rp && len(at.Value) > 0 {
			rp, rv = p, at.Value
		}
	}
	switch {
	case sp != noVirtual && sp <= rp:
		return sv
	case rp != noVirtual:
		return rv
	}
	return nil
}

// Span kinds as OTLP numbers them, for packages that read otlpwire spans.
const (
	SpanKindServer   = kindServer
	SpanKindClient   = kindClient
	SpanKindProducer = kindProducer
	SpanKindConsumer = kindConsumer
)
