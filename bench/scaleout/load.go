package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/internal/otlptest"
)

// encodedRequest is one pre-encoded ExportTraceServiceRequest and where
// its IDs are, so that every send can carry fresh IDs at the cost of a
// copy and a few XORs.
type encodedRequest struct {
	raw      []byte
	spans    int
	traceIDs []int // offsets of the 16-byte trace_id values
	spanIDs  []int // offsets of the 8-byte span_id and parent_span_id values
}

// Wire tags (field number << 3 | length-delimited) of the Span fields.
const (
	tagTraceID      = 1<<3 | 2
	tagSpanID       = 2<<3 | 2
	tagParentSpanID = 4<<3 | 2
)

// encodeRequest marshals req and finds the IDs of its spans in the bytes:
// in field order, each ID behind its tag and length, searched from where
// the previous one ended (deterministic marshalling writes the spans in
// order and a span's fields by number).
func encodeRequest(req *coltracepb.ExportTraceServiceRequest) (*encodedRequest, error) {
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, err
	}
	e := &encodedRequest{raw: raw}
	pos := 0
	find := func(tag byte, id []byte) (int, error) {
		pat := append([]byte{tag, byte(len(id))}, id...)
		i := bytes.Index(raw[pos:], pat)
		if i < 0 {
			return 0, fmt.Errorf("span ID %x (tag %#x) not found in the encoded request", id, tag)
		}
		off := pos + i + 2
		pos = off + len(id)
		return off, nil
	}
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				if len(sp.GetTraceId()) != 16 || len(sp.GetSpanId()) != 8 {
					return nil, fmt.Errorf("span %q: trace ID of %d bytes, span ID of %d", sp.GetName(), len(sp.GetTraceId()), len(sp.GetSpanId()))
				}
				off, err := find(tagTraceID, sp.GetTraceId())
				if err != nil {
					return nil, err
				}
				e.traceIDs = append(e.traceIDs, off)
				if off, err = find(tagSpanID, sp.GetSpanId()); err != nil {
					return nil, err
				}
				e.spanIDs = append(e.spanIDs, off)
				if p := sp.GetParentSpanId(); len(p) == 8 {
					if off, err = find(tagParentSpanID, p); err != nil {
						return nil, err
					}
					e.spanIDs = append(e.spanIDs, off)
				}
				e.spans++
			}
		}
	}
	return e, nil
}

// render writes into dst (grown as needed) the request with every trace
// ID and span ID XORed with keys drawn from round: each pass over the
// pool sends new IDs, a span and its parent stay linked (both get the
// same key) and the spans of a trace stay one trace.
func (e *encodedRequest) render(dst []byte, round uint64) []byte {
	dst = append(dst[:0], e.raw...)
	r := rand.New(rand.NewPCG(round, 0x5ca1e0))
	t0, t1, s := r.Uint64(), r.Uint64(), r.Uint64()
	for _, off := range e.traceIDs {
		binary.LittleEndian.PutUint64(dst[off:], binary.LittleEndian.Uint64(dst[off:])^t0)
		binary.LittleEndian.PutUint64(dst[off+8:], binary.LittleEndian.Uint64(dst[off+8:])^t1)
	}
	for _, off := range e.spanIDs {
		binary.LittleEndian.PutUint64(dst[off:], binary.LittleEndian.Uint64(dst[off:])^s)
	}
	return dst
}

// buildPool makes n distinct requests of perRequest shop traces each
// (otlptest.GenerateTopology, seed seedBase*1e5+i+1 for request i, so no
// two share a trace ID), their traces starting one after another from
// start, spread over span.
func buildPool(n, perRequest int, seedBase uint64, start time.Time, span time.Duration) ([]*encodedRequest, int, error) {
	step := span / time.Duration(n*perRequest)
	if step <= 0 {
		step = time.Microsecond
	}
	pool := make([]*encodedRequest, 0, n)
	spans := 0
	for i := range n {
		top := otlptest.GenerateTopology(otlptest.TopologyOptions{Traces: perRequest, PerRequest: perRequest,
			Start: start.Add(time.Duration(i*perRequest) * step), Step: step, Seed: seedBase*100_000 + uint64(i) + 1})
		if len(top.Requests) != 1 {
			return nil, 0, fmt.Errorf("GenerateTopology made %d requests, want 1", len(top.Requests))
		}
		e, err := encodeRequest(top.Requests[0])
		if err != nil {
			return nil, 0, err
		}
		if e.spans != top.Spans {
			return nil, 0, fmt.Errorf("request %d: located %d spans of %d", i, e.spans, top.Spans)
		}
		pool = append(pool, e)
		spans += e.spans
	}
	return pool, spans, nil
}

// exportMethod is the OTLP/gRPC trace export.
const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// wireCodec hands pre-encoded request bytes ([]byte) to gRPC as they are
// and decodes the answers with protobuf.
type wireCodec struct{}

// Name is the content subtype: the protobuf one.
func (wireCodec) Name() string { return "proto" }

// Marshal returns a []byte unchanged and encodes a protobuf message.
func (wireCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.([]byte); ok {
		return b, nil
	}
	return proto.Marshal(v.(proto.Message))
}

// Unmarshal decodes a protobuf message.
func (wireCodec) Unmarshal(b []byte, v any) error { return proto.Unmarshal(b, v.(proto.Message)) }

// dialReady opens a gRPC connection to addr and waits until it is
// connected.
func dialReady(ctx context.Context, addr string) (*grpc.ClientConn, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(wireCodec{})),
		grpc.WithInitialWindowSize(1<<20), grpc.WithInitialConnWindowSize(4<<20))
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cc.Connect()
	for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
		if !cc.WaitForStateChange(wctx, s) {
			cc.Close()
			return nil, fmt.Errorf("connect to %s: still %v after 10 s", addr, s)
		}
	}
	return cc, nil
}

// loadStats are the sender's counters.
type loadStats struct {
	requests, acked, refused, failed, rejected atomic.Int64

	mu                     sync.Mutex
	firstErr, firstRefusal string
}

// note keeps the first message of a kind.
func (st *loadStats) note(first *string, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if *first == "" {
		*first = err.Error()
	}
}

// maxFailed stops the load after this many failed calls (not refusals):
// something is badly wrong.
const maxFailed = 1000

// send exports from the pool over cc, one call at a time, until until or
// the end of ctx: seq numbers the requests across all senders (request
// seq%len(pool) of round seq/len(pool)). A refusal (UNAVAILABLE,
// RESOURCE_EXHAUSTED: the Collector's queues are full) backs off 20 ms.
func send(ctx context.Context, cc *grpc.ClientConn, pool []*encodedRequest, seq *atomic.Uint64, until time.Time, st *loadStats) {
	var buf []byte
	n := uint64(len(pool))
	for ctx.Err() == nil && time.Now().Before(until) && st.failed.Load() < maxFailed {
		k := seq.Add(1) - 1
		e := pool[k%n]
		buf = e.render(buf, k/n)
		var resp coltracepb.ExportTraceServiceResponse
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := cc.Invoke(cctx, exportMethod, buf, &resp)
		cancel()
		st.requests.Add(1)
		if err == nil {
			rej := resp.GetPartialSuccess().GetRejectedSpans()
			st.acked.Add(int64(e.spans) - rej)
			st.rejected.Add(rej)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.ResourceExhausted:
			st.refused.Add(1)
			st.note(&st.firstRefusal, err)
			time.Sleep(20 * time.Millisecond)
		default:
			st.failed.Add(1)
			st.note(&st.firstErr, err)
			time.Sleep(10 * time.Millisecond)
		}
	}
}
