package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// load is shared by the clients.
type load struct {
	templates        []*template
	winStart, winEnd time.Time
	maxRequests      int64
	timeout          time.Duration
	seqBase          uint64
	seq              atomic.Uint64
	sent             atomic.Int64
	// acks records every acknowledgement: per 100 ms the acknowledgements
	// and spans, the longest gaps and the latencies, in memory bounded by
	// the window's length rather than the number of requests.
	acks *ackRecorder
}

// client is one sending goroutine; its counters are read after it ends.
type client struct {
	ld  *load
	cc  *grpc.ClientConn
	buf []byte

	ok, refused, failed, rejected int64
	acked, ackedWin               int64
	firstErr                      string
	firstTrace, lastTrace         string
}

const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

func (cl *client) loop(ctx context.Context) {
	ld := cl.ld
	msg := &rawMsg{}
	for ctx.Err() == nil && time.Now().Before(ld.winEnd) && ld.sent.Add(1) <= ld.maxRequests {
		seq := ld.seq.Add(1)
		tp := ld.templates[seq%uint64(len(ld.templates))]
		t0 := time.Now()
		cl.buf = tp.render(cl.buf, ld.seqBase+seq, t0)
		msg.b = cl.buf
		var resp coltracepb.ExportTraceServiceResponse
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ld.timeout)
		err := cl.cc.Invoke(cctx, exportMethod, msg, &resp)
		cancel()
		if err == nil {
			n := int64(tp.spans)
			if ps := resp.GetPartialSuccess(); ps != nil {
				n -= ps.GetRejectedSpans()
				cl.rejected += ps.GetRejectedSpans()
			}
			cl.ok++
			cl.acked += n
			if _, inWindow := ld.acks.ack(t0, n); inWindow {
				cl.ackedWin += n
			}
			if n == int64(tp.spans) {
				cl.lastTrace = hex.EncodeToString(cl.buf[tp.traceIDs[0] : tp.traceIDs[0]+16])
				if cl.firstTrace == "" {
					cl.firstTrace = cl.lastTrace
				}
			}
			continue
		}
		st := status.Convert(err)
		switch st.Code() {
		case codes.ResourceExhausted, codes.Unavailable:
			cl.refused++
			delay := time.Second
			for _, d := range st.Details() {
				if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
					delay = ri.GetRetryDelay().AsDuration()
				}
			}
			// Jitter, and never past the end of the window.
			delay = delay/2 + rand.N(delay/2+1)
			if rest := time.Until(ld.winEnd); delay > rest {
				delay = rest
			}
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
		default:
			cl.failed++
			if cl.firstErr == "" {
				cl.firstErr = err.Error()
			}
			if cl.failed > 100 { // something is badly wrong; stop hammering
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// rawMsg is a pre-encoded request, sent as is by rawCodec.
type rawMsg struct{ b []byte }

// rawCodec sends rawMsg bytes without copying or encoding and uses the
// protobuf codec for everything else (the responses).
type rawCodec struct{ proto encoding.CodecV2 }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*rawMsg); ok {
		return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
	}
	return c.proto.Marshal(v)
}

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

func (c rawCodec) Name() string { return "proto" }

// traceFound asks the REST API for a trace by ID.
func traceFound(httpAddr, traceID string) (bool, error) {
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + httpAddr + "/api/v1/traces/" + traceID)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	return bytes.Contains(body, []byte(traceID)), nil
}
