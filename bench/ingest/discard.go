package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

// The decode-and-discard server (-vs-discard): a stock grpc-go server whose
// OTLP TraceService Export decodes each request with the standard protobuf
// codec (proto.Unmarshal into an ExportTraceServiceRequest, as grpc-go's
// proto codec does), counts its spans and throws it away. It is what any
// OTLP/gRPC receiver costs at the least: the gap to the collector is what
// durability, indexing and aggregation cost. The harness runs it as a
// subprocess of its own binary (serveDiscardArg), so that its CPU and RSS
// are measured from /proc exactly like the collector's.
const (
	// serveDiscardArg, as the first argument, runs the binary as the
	// discard server listening on the second argument (host:port); it is
	// not listed by -help.
	serveDiscardArg = "-serve-discard"
	// discardStartedMsg is the message of the server's JSON "started" log
	// line, with the otlp_grpc and http addresses benchproc.Start reads.
	discardStartedMsg = "discard server started"
	// discardMaxRecv is the largest request the discard server accepts.
	discardMaxRecv = 64 << 20
)

// discardServer implements the OTLP TraceService by counting and dropping.
type discardServer struct {
	coltracepb.UnimplementedTraceServiceServer
	spans, requests atomic.Int64
}

// Export counts the spans of the decoded request and answers with an empty
// response (no partial success).
func (d *discardServer) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	var n int64
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += int64(len(ss.GetSpans()))
		}
	}
	d.spans.Add(n)
	d.requests.Add(1)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// ServeHTTP answers GET /spans with the spans counted so far (a decimal
// number) and GET /readyz with "ready".
func (d *discardServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch r.URL.Path {
	case "/spans":
		fmt.Fprintf(w, "%d\n", d.spans.Load())
	case "/readyz":
		io.WriteString(w, "ready\n")
	default:
		http.NotFound(w, r)
	}
}

// runningDiscard is a discard server listening on its two ports.
type runningDiscard struct {
	srv                *discardServer
	grpcSrv            *grpc.Server
	httpSrv            *http.Server
	grpcAddr, httpAddr string
	errc               chan error
}

// startDiscard starts a discard server with OTLP/gRPC on grpcAddr and the
// span count on httpAddr (host:port, port 0 for any).
func startDiscard(grpcAddr, httpAddr string) (*runningDiscard, error) {
	gl, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return nil, fmt.Errorf("discard server: listen otlp_grpc on %s: %w", grpcAddr, err)
	}
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		gl.Close()
		return nil, fmt.Errorf("discard server: listen http on %s: %w", httpAddr, err)
	}
	d := &runningDiscard{srv: &discardServer{}, grpcAddr: gl.Addr().String(), httpAddr: hl.Addr().String(), errc: make(chan error, 2)}
	d.grpcSrv = grpc.NewServer(grpc.MaxRecvMsgSize(discardMaxRecv))
	coltracepb.RegisterTraceServiceServer(d.grpcSrv, d.srv)
	d.httpSrv = &http.Server{Handler: d.srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { d.errc <- d.grpcSrv.Serve(gl) }()
	go func() {
		if err := d.httpSrv.Serve(hl); !errors.Is(err, http.ErrServerClosed) {
			d.errc <- err
		}
	}()
	return d, nil
}

// stop ends both servers, letting the calls in flight finish.
func (d *runningDiscard) stop() {
	d.httpSrv.Close()
	done := make(chan struct{})
	go func() { d.grpcSrv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		d.grpcSrv.Stop()
	}
}

// serveDiscardMain runs the discard server of `ingest -serve-discard
// HOST:PORT` (OTLP/gRPC on HOST:PORT, the span count on HOST:0) until
// SIGTERM or SIGINT, logging JSON lines to stderr, and returns the exit
// code.
func serveDiscardMain(args []string) int {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if len(args) != 1 {
		log.Error("usage: ingest -serve-discard HOST:PORT")
		return 2
	}
	host, _, err := net.SplitHostPort(args[0])
	if err != nil {
		log.Error("bad address", "addr", args[0], "err", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := startDiscard(args[0], net.JoinHostPort(host, "0"))
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	log.Info(discardStartedMsg, "otlp_grpc", d.grpcAddr, "http", d.httpAddr)
	select {
	case <-ctx.Done():
	case err := <-d.errc:
		log.Error("serve", "err", err)
		d.stop()
		return 1
	}
	d.stop()
	log.Info("discard server stopped", "spans", d.srv.spans.Load(), "requests", d.srv.requests.Load())
	return 0
}

// discardSpans reads the span count of the discard server at httpAddr.
func discardSpans(httpAddr string) (int64, error) {
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + httpAddr + "/spans")
	if err != nil {
		return 0, fmt.Errorf("discard server span count: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if err != nil {
		return 0, fmt.Errorf("discard server span count: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("discard server span count %q: %w", b, err)
	}
	return n, nil
}
