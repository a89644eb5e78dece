package security

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// healthStub counts the calls that reach it.
type healthStub struct {
	healthpb.UnimplementedHealthServer
	calls atomic.Int32
}

func (h *healthStub) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.calls.Add(1)
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (h *healthStub) List(context.Context, *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	h.calls.Add(1)
	return &healthpb.HealthListResponse{}, nil
}

func (h *healthStub) Watch(_ *healthpb.HealthCheckRequest, ss grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	h.calls.Add(1)
	return ss.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
}

func grpcScope(fullMethod string) Scope {
	switch fullMethod {
	case healthpb.Health_Check_FullMethodName:
		return ScopeIngest
	case healthpb.Health_Watch_FullMethodName:
		return ScopeRead
	}
	return ScopeNone
}

// serveGRPC serves the stub with the interceptors on 127.0.0.1 and returns
// a client connection.
func serveGRPC(t *testing.T, stub *healthStub, tokens *Tokens, serverCreds, clientCreds credentials.TransportCredentials) healthpb.HealthClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(UnaryServerInterceptor(tokens, grpcScope)),
		grpc.ChainStreamInterceptor(StreamServerInterceptor(tokens, grpcScope)),
	}
	if serverCreds != nil {
		opts = append(opts, grpc.Creds(serverCreds))
	}
	srv := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(srv, stub)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(clientCreds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		srv.Stop()
		<-done
	})
	return healthpb.NewHealthClient(cc)
}

func TestGRPCInterceptors(t *testing.T) {
	stub := new(healthStub)
	client := serveGRPC(t, stub, testTokens(t), nil, insecure.NewCredentials())
	tests := []struct {
		name     string
		method   string // check, watch or list
		md       []string
		wantCode codes.Code
		wantMsg  string
	}{
		{"unary without token", "check", nil, codes.Unauthenticated, `scope "ingest" is required`},
		{"unary with wrong token", "check", []string{"authorization", "Bearer wrong-0123456789abcdef"}, codes.Unauthenticated, `does not grant scope "ingest"`},
		{"unary with the read token", "check", []string{"authorization", "Bearer " + readTok}, codes.Unauthenticated, `scope "ingest"`},
		{"unary with Basic", "check", []string{"authorization", "Basic " + ingestTok}, codes.Unauthenticated, "is required"},
		{"unary with token", "check", []string{"authorization", "Bearer " + ingestTok}, codes.OK, ""},
		{"unary, metadata key in capitals", "check", []string{"Authorization", "bearer " + ingestTok}, codes.OK, ""},
		{"public method", "list", nil, codes.OK, ""},
		{"stream without token", "watch", nil, codes.Unauthenticated, `scope "read" is required`},
		{"stream with the ingest token", "watch", []string{"authorization", "Bearer " + ingestTok}, codes.Unauthenticated, `scope "read"`},
		{"stream with read token", "watch", []string{"authorization", "Bearer " + readTok}, codes.OK, ""},
		{"stream with write token", "watch", []string{"authorization", "Bearer " + writeTok}, codes.OK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if tt.md != nil {
				ctx = metadata.AppendToOutgoingContext(ctx, tt.md...)
			}
			before := stub.calls.Load()
			var err error
			switch tt.method {
			case "check":
				_, err = client.Check(ctx, &healthpb.HealthCheckRequest{})
			case "list":
				_, err = client.List(ctx, &healthpb.HealthListRequest{})
			case "watch":
				var stream grpc.ServerStreamingClient[healthpb.HealthCheckResponse]
				if stream, err = client.Watch(ctx, &healthpb.HealthCheckRequest{}); err == nil {
					_, err = stream.Recv()
				}
			}
			st := status.Convert(err)
			if st.Code() != tt.wantCode || !strings.Contains(st.Message(), tt.wantMsg) {
				t.Errorf("got %v %q, want %v containing %q", st.Code(), st.Message(), tt.wantCode, tt.wantMsg)
			}
			for _, secret := range []string{ingestTok, readTok, writeTok} {
				if strings.Contains(st.Message(), secret) {
					t.Errorf("the message holds a token: %q", st.Message())
				}
			}
			called := stub.calls.Load() != before
			if called != (tt.wantCode == codes.OK) {
				t.Errorf("handler called: %v, want %v", called, tt.wantCode == codes.OK)
			}
		})
	}
}

// TestGRPCOverMutualTLS serves gRPC with TLS.Config (gRPC needs the h2
// ALPN protocol) and mutual TLS, with a token on top.
func TestGRPCOverMutualTLS(t *testing.T) {
	tc := testCerts(t)
	tt, err := NewTLS(TLSFiles{CertFile: tc.CertFile, KeyFile: tc.KeyFile, ClientCAFile: tc.CAFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	clientTLS := &tls.Config{RootCAs: tc.CAPool, Certificates: []tls.Certificate{clientCert(t, tc)}}
	stub := new(healthStub)
	client := serveGRPC(t, stub, testTokens(t), credentials.NewTLS(tt.Config()), credentials.NewTLS(clientTLS))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.Check(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+ingestTok), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check over mutual TLS: %v", err)
	}
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Check without token over mutual TLS: %v", err)
	}
}

func TestGRPCNilTokens(t *testing.T) {
	stub := new(healthStub)
	client := serveGRPC(t, stub, nil, nil, insecure.NewCredentials())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check without tokens configured: %v", err)
	}
}
