package synthetics

import (
	"fmt"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/store"
)

// Names in the prober's spans.
const (
	// serviceName is the resource's service.name; the aggregator names
	// the node synthetic:<check> from aggregate.SyntheticCheckAttr.
	serviceName = "synthetics"
	sdkName     = "flowscope-synthetics"
	scopeName   = "github.com/flowscope/flowscope/synthetics"
	// correlationAttr is the attribute the store indexes the correlation
	// ID under (store.DefaultCorrelationKeys()).
	correlationAttr = "correlation.id"
)

// trace encodes the attempt's spans as an ExportTraceServiceRequest: the
// root span (the check) and a CLIENT span under it per step that ran. run
// is the attempt's result, already masked; the span attributes come from
// it or are masked here.
func (a *attempt) trace(run *store.SyntheticRun) ([]byte, error) {
	end := run.Start.Add(run.Duration)
	root := &tracepb.Span{
		TraceId: a.traceID[:], SpanId: a.rootID[:], Name: run.Check, Kind: tracepb.Span_SPAN_KIND_INTERNAL,
		StartTimeUnixNano: unixNano(run.Start), EndTimeUnixNano: unixNano(end),
		Attributes: []*commonpb.KeyValue{
			str(aggregate.SyntheticCheckAttr, run.Check),
			str("user_agent.synthetic.type", "test"),
			str("synthetic.run_id", run.RunID),
			str("synthetic.trigger", run.Trigger),
			num("synthetic.attempt", int64(run.Attempt)),
			str(correlationAttr, run.CorrelationID),
		},
		Status: spanStatus(run.OK, run.Error),
	}
	spans := make([]*tracepb.Span, 1, 1+len(run.Steps))
	spans[0] = root
	for i := range run.Steps {
		sp, st := &a.spans[i], &run.Steps[i]
		if !sp.ran {
			continue
		}
		attrs := []*commonpb.KeyValue{
			str("http.request.method", st.Method),
			str("url.full", st.URL),
		}
		if sp.host != "" {
			attrs = append(attrs, str("server.address", a.mask.clean(sp.host)), num("server.port", int64(sp.port)))
		}
		if st.Status != 0 {
			attrs = append(attrs, num("http.response.status_code", int64(st.Status)))
		}
		attrs = append(attrs, str("synthetic.step", st.Name), str(correlationAttr, run.CorrelationID))
		spans = append(spans, &tracepb.Span{
			TraceId: a.traceID[:], SpanId: sp.id[:], ParentSpanId: a.rootID[:], Name: st.Name,
			Kind:              tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: unixNano(sp.start), EndTimeUnixNano: unixNano(sp.end),
			Attributes: attrs, Status: spanStatus(st.OK, st.Error),
		})
	}
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			str("service.name", serviceName),
			str(aggregate.SyntheticCheckAttr, run.Check),
			str("telemetry.sdk.name", sdkName),
		}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: scopeName}, Spans: spans}},
	}}}
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode the spans of run %s: %w", run.RunID, err)
	}
	return b, nil
}

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func num(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

// spanStatus is a span's status: ERROR with msg on failure, unset otherwise.
func spanStatus(ok bool, msg string) *tracepb.Status {
	if ok {
		return nil
	}
	return &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: msg}
}

func unixNano(t time.Time) uint64 { return uint64(max(t.UnixNano(), 0)) }
