package main

// The background load: pre-encoded export requests whose IDs and timestamps
// are rewritten on every send (the technique of bench/ingest's gen.go, from
// which template, locate, walk, render and mix are copied), sent at a fixed
// rate by several clients, counting only what the collector acknowledged.

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// template is one pre-encoded ExportTraceServiceRequest with the byte
// offsets of its IDs and timestamps.
type template struct {
	raw      []byte
	spans    int
	traceIDs []int // offsets of 16-byte trace_id values
	spanIDs  []int // offsets of 8-byte span_id and parent_span_id values
	times    []int // offsets of fixed64 start/end timestamps
	genNanos uint64
}

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// bgService names background service i of n.
func bgService(i, n int) string { return fmt.Sprintf("bg-%03d", (i%n+n)%n) }

// bgEdges returns the background topology: edges edges among edges/3
// services (at least 4), each calling the next three.
func bgEdges(edges int) [][2]string {
	services := max((edges+2)/3, 4)
	out := make([][2]string, 0, edges)
	for i := 0; len(out) < edges; i++ {
		out = append(out, [2]string{bgService(i/3, services), bgService(i/3+1+i%3, services)})
	}
	return out
}

// buildTemplates encodes n requests of spansPerRequest spans (rounded up to
// pairs): traces of a CLIENT span calling a SERVER span over the edges, in
// rotation, each service's spans in a resource of its own, 1 to 50 ms long.
func buildTemplates(n, spansPerRequest int, edges [][2]string, seed uint64) ([]*template, error) {
	traces := max((spansPerRequest+1)/2, 1)
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	now := time.Now()
	out := make([]*template, 0, n)
	next := 0
	for i := 0; i < n; i++ {
		byService := map[string]*tracepb.ScopeSpans{}
		var order []string
		scope := func(s string) *tracepb.ScopeSpans {
			if byService[s] == nil {
				byService[s] = &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: "bench-alerting"}}
				order = append(order, s)
			}
			return byService[s]
		}
		for t := 0; t < traces; t++ {
			e := edges[next%len(edges)]
			next++
			tid, pid, cid := randID(r, 16), randID(r, 8), randID(r, 8)
			d := time.Duration(1+r.IntN(50)) * time.Millisecond
			end := now.Add(-time.Duration(traces-t) * time.Microsecond)
			st, en := uint64(end.Add(-d).UnixNano()), uint64(end.UnixNano())
			scope(e[0]).Spans = append(scope(e[0]).Spans, &tracepb.Span{
				TraceId: tid, SpanId: pid, Name: "GET /" + e[1], Kind: tracepb.Span_SPAN_KIND_CLIENT,
				StartTimeUnixNano: st, EndTimeUnixNano: en, Status: &tracepb.Status{},
			})
			scope(e[1]).Spans = append(scope(e[1]).Spans, &tracepb.Span{
				TraceId: tid, SpanId: cid, ParentSpanId: pid, Name: "GET /", Kind: tracepb.Span_SPAN_KIND_SERVER,
				StartTimeUnixNano: st, EndTimeUnixNano: en, Status: &tracepb.Status{},
			})
		}
		req := &coltracepb.ExportTraceServiceRequest{}
		for _, s := range order {
			req.ResourceSpans = append(req.ResourceSpans, &tracepb.ResourceSpans{
				Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", s)}},
				ScopeSpans: []*tracepb.ScopeSpans{byService[s]},
			})
		}
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
		if err != nil {
			return nil, err
		}
		tp := &template{raw: raw, genNanos: uint64(now.UnixNano())}
		if err := tp.locate(); err != nil {
			return nil, err
		}
		if tp.spans != 2*traces || len(tp.traceIDs) != 2*traces || len(tp.spanIDs) != 3*traces || len(tp.times) != 4*traces {
			return nil, fmt.Errorf("template %d: located %d spans, %d trace IDs, %d span IDs, %d times; want %d spans",
				i, tp.spans, len(tp.traceIDs), len(tp.spanIDs), len(tp.times), 2*traces)
		}
		out = append(out, tp)
	}
	return out, nil
}

func randID(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for {
		for i := 0; i < n; i += 8 {
			binary.LittleEndian.PutUint64(b[i:], r.Uint64())
		}
		for _, c := range b {
			if c != 0 {
				return b
			}
		}
	}
}

// locate records where the IDs and timestamps of every span are.
func (tp *template) locate() error {
	return walk(tp.raw, 0, func(num protowire.Number, typ protowire.Type, off int, val []byte) error {
		if num != 1 || typ != protowire.BytesType { // resource_spans
			return nil
		}
		return walk(val, off, func(num protowire.Number, typ protowire.Type, off int, val []byte) error {
			if num != 2 || typ != protowire.BytesType { // scope_spans
				return nil
			}
			return walk(val, off, func(num protowire.Number, typ protowire.Type, off int, val []byte) error {
				if num != 2 || typ != protowire.BytesType { // spans
					return nil
				}
				tp.spans++
				return walk(val, off, func(num protowire.Number, typ protowire.Type, off int, val []byte) error {
					switch {
					case num == 1 && typ == protowire.BytesType && len(val) == 16:
						tp.traceIDs = append(tp.traceIDs, off)
					case (num == 2 || num == 4) && typ == protowire.BytesType && len(val) == 8:
						tp.spanIDs = append(tp.spanIDs, off)
					case (num == 7 || num == 8) && typ == protowire.Fixed64Type:
						tp.times = append(tp.times, off)
					}
					return nil
				})
			})
		})
	})
}

// walk calls fn for every field of message b, which starts at offset base
// of the whole request; off is the absolute offset of the field's value.
func walk(b []byte, base int, fn func(num protowire.Number, typ protowire.Type, off int, val []byte) error) error {
	pos := 0
	for pos < len(b) {
		num, typ, n := protowire.ConsumeTag(b[pos:])
		if n < 0 {
			return protowire.ParseError(n)
		}
		pos += n
		var val []byte
		start := pos
		switch typ {
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b[pos:])
			if m < 0 {
				return protowire.ParseError(m)
			}
			start = pos + m - len(v)
			val = v
			pos += m
		default:
			m := protowire.ConsumeFieldValue(num, typ, b[pos:])
			if m < 0 {
				return protowire.ParseError(m)
			}
			val = b[pos : pos+m]
			pos += m
		}
		if err := fn(num, typ, base+start, val); err != nil {
			return err
		}
	}
	return nil
}

// render copies the template into dst with its IDs XORed with keys derived
// from seq (parent links survive) and its timestamps shifted to now.
func (tp *template) render(dst []byte, seq uint64, now time.Time) []byte {
	dst = append(dst[:0], tp.raw...)
	var tk [16]byte
	binary.LittleEndian.PutUint64(tk[0:], mix(seq))
	binary.LittleEndian.PutUint64(tk[8:], mix(seq^0xa5a5a5a5a5a5a5a5))
	sk := mix(seq ^ 0x5a5a5a5a5a5a5a5a)
	if sk == 0 {
		sk = 1
	}
	for _, off := range tp.traceIDs {
		binary.LittleEndian.PutUint64(dst[off:], binary.LittleEndian.Uint64(dst[off:])^binary.LittleEndian.Uint64(tk[0:]))
		binary.LittleEndian.PutUint64(dst[off+8:], binary.LittleEndian.Uint64(dst[off+8:])^binary.LittleEndian.Uint64(tk[8:]))
	}
	for _, off := range tp.spanIDs {
		binary.LittleEndian.PutUint64(dst[off:], binary.LittleEndian.Uint64(dst[off:])^sk)
	}
	if shift := uint64(now.UnixNano()) - tp.genNanos; int64(shift) > 0 {
		for _, off := range tp.times {
			binary.LittleEndian.PutUint64(dst[off:], binary.LittleEndian.Uint64(dst[off:])+shift)
		}
	}
	return dst
}

// mix is splitmix64's finaliser, a bijection on uint64.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// rawMsg is a pre-encoded request, sent as is by rawCodec.
type rawMsg struct{ b []byte }

// rawCodec sends rawMsg bytes as they are and uses the protobuf codec for
// everything else (the responses).
type rawCodec struct{ proto encoding.CodecV2 }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*rawMsg); ok {
		return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
	}
	return c.proto.Marshal(v)
}

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

func (c rawCodec) Name() string { return "proto" }

const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// ackBucket is the width of the buckets acknowledged spans are counted in.
const ackBucket = 100 * time.Millisecond

// background sends the templates at a fixed rate until stopped.
type background struct {
	templates []*template
	conns     []*grpc.ClientConn
	rate      float64 // spans/s; 0: as fast as the collector answers
	seqBase   uint64
	start     time.Time

	seq     atomic.Uint64
	ok      atomic.Int64
	refused atomic.Int64
	failed  atomic.Int64

	mu       sync.Mutex
	buckets  map[int64]int64 // acknowledged spans by ackBucket since start
	firstErr string

	stop chan struct{}
	wg   sync.WaitGroup
}

// run starts clients senders; each takes the next send slot (every
// spansPerRequest/rate), waits for it and sends. A client that fell more
// than a second behind skips the slots it missed rather than bursting.
func (bg *background) run(ctx context.Context, clients int) {
	bg.start = time.Now()
	bg.buckets = map[int64]int64{}
	bg.stop = make(chan struct{})
	var every time.Duration
	if bg.rate > 0 {
		every = time.Duration(float64(bg.templates[0].spans) / bg.rate * float64(time.Second))
	}
	for i := range clients {
		bg.wg.Add(1)
		go func(cc *grpc.ClientConn) {
			defer bg.wg.Done()
			var buf []byte
			msg := &rawMsg{}
			for {
				seq := bg.seq.Add(1)
				if every > 0 {
					slot := bg.start.Add(time.Duration(seq) * every)
					if late := time.Since(slot); late > time.Second {
						bg.seq.Add(uint64(late / every))
					} else if late < 0 {
						select {
						case <-bg.stop:
							return
						case <-ctx.Done():
							return
						case <-time.After(-late):
						}
					}
				}
				select {
				case <-bg.stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				tp := bg.templates[seq%uint64(len(bg.templates))]
				buf = tp.render(buf, bg.seqBase+seq, time.Now())
				msg.b = buf
				var resp coltracepb.ExportTraceServiceResponse
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err := cc.Invoke(cctx, exportMethod, msg, &resp)
				cancel()
				if err == nil {
					n := int64(tp.spans) - resp.GetPartialSuccess().GetRejectedSpans()
					bg.ok.Add(1)
					bg.mu.Lock()
					bg.buckets[int64(time.Since(bg.start)/ackBucket)] += n
					bg.mu.Unlock()
					continue
				}
				switch status.Code(err) {
				case codes.ResourceExhausted, codes.Unavailable:
					bg.refused.Add(1)
					time.Sleep(100 * time.Millisecond)
				default:
					bg.failed.Add(1)
					bg.mu.Lock()
					if bg.firstErr == "" {
						bg.firstErr = err.Error()
					}
					bg.mu.Unlock()
					time.Sleep(100 * time.Millisecond)
				}
			}
		}(bg.conns[i%len(bg.conns)])
	}
}

// halt stops the senders and waits for their calls in flight.
func (bg *background) halt() {
	close(bg.stop)
	bg.wg.Wait()
}

// acked returns the spans acknowledged in [from, to) (whole buckets).
func (bg *background) acked(from, to time.Time) int64 {
	lo, hi := int64(from.Sub(bg.start)/ackBucket), int64(to.Sub(bg.start)/ackBucket)
	bg.mu.Lock()
	defer bg.mu.Unlock()
	var n int64
	for b, v := range bg.buckets {
		if b >= lo && b < hi {
			n += v
		}
	}
	return n
}

// rateIn returns the acknowledged spans/s in [from, to), whole buckets.
func (bg *background) rateIn(from, to time.Time) float64 {
	lo, hi := from.Sub(bg.start)/ackBucket, to.Sub(bg.start)/ackBucket
	if hi <= lo {
		return 0
	}
	return float64(bg.acked(from, to)) / (time.Duration(hi-lo) * ackBucket).Seconds()
}
