package fanout

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParsePeer(t *testing.T) {
	tests := []struct {
		in   string
		want spec
		err  string
	}{
		{in: "http://10.0.0.1:8686", want: spec{kind: "url", scheme: "http", host: "10.0.0.1", port: "8686"}},
		{in: "https://node.example:443/", want: spec{kind: "url", scheme: "https", host: "node.example", port: "443"}},
		{in: "http://[::1]:8686", want: spec{kind: "url", scheme: "http", host: "::1", port: "8686"}},
		{in: "dns+flowscope-nodes.obs.svc:8686", want: spec{kind: "dns", scheme: "http", host: "flowscope-nodes.obs.svc", port: "8686"}},
		{in: "dns+https://nodes.example:8443", want: spec{kind: "dns", scheme: "https", host: "nodes.example", port: "8443"}},
		{in: "dnssrv+_http._tcp.flowscope.obs.svc", want: spec{kind: "dnssrv", scheme: "http", host: "_http._tcp.flowscope.obs.svc"}},
		{in: "10.0.0.1:8686", err: "want http://host:port"},
		{in: "ftp://10.0.0.1:21", err: `scheme "ftp"`},
		{in: "http://10.0.0.1", err: "missing port"},
		{in: "http://10.0.0.1:99999", err: "out of range"},
		{in: "http://10.0.0.1:8686/api", err: "nothing else"},
		{in: "dns+nodes.svc", err: "missing port"},
		{in: "dnssrv+", err: "want dnssrv+ followed by a DNS name"},
		{in: "dnssrv+name:80", err: "want dnssrv+ followed by a DNS name"},
	}
	for _, tt := range tests {
		got, err := parseSpec(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tt.in) {
				t.Errorf("parseSpec(%q) error = %v, want one naming it and containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseSpec(%q): %v", tt.in, err)
			continue
		}
		got.raw = ""
		if got != tt.want {
			t.Errorf("parseSpec(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestPeerSetFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "peers")
	b, err := os.ReadFile("testdata/peers.txt")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ps, err := NewPeerSet(context.Background(), PeerSetOptions{Peers: []string{"http://127.0.0.9:1"}, File: path})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://127.0.0.1:8686", "http://127.0.0.2:8686", "http://127.0.0.9:1", "https://node-3.example:8443"}
	if got := ps.Current(); !slices.Equal(got, want) {
		t.Errorf("peers = %v, want %v", got, want)
	}
	// The file changes: Refresh picks it up.
	if err := os.WriteFile(path, []byte("http://127.0.0.3:8686\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ps.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := ps.Current(), []string{"http://127.0.0.3:8686", "http://127.0.0.9:1"}; !slices.Equal(got, want) {
		t.Errorf("after refresh, peers = %v, want %v", got, want)
	}
	// A bad file is refused with its line, and the set is kept.
	bad, err := os.ReadFile("testdata/peers-bad.txt")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	err = ps.Refresh(context.Background())
	if err == nil || !strings.Contains(err.Error(), path+":2") {
		t.Errorf("refresh with a bad line: err = %v, want one naming %s:2", err, path)
	}
	if got, want := ps.Current(), []string{"http://127.0.0.3:8686", "http://127.0.0.9:1"}; !slices.Equal(got, want) {
		t.Errorf("after a bad file, peers = %v, want the previous %v", got, want)
	}
	if _, err := NewPeerSet(context.Background(), PeerSetOptions{File: filepath.Join(dir, "missing")}); err == nil {
		t.Error("NewPeerSet with a missing file: no error")
	}
}

func TestPeerSetDNS(t *testing.T) {
	ps, err := NewPeerSet(context.Background(), PeerSetOptions{Peers: []string{"dns+localhost:8686"}})
	if err != nil {
		t.Fatal(err)
	}
	got := ps.Current()
	if !slices.Contains(got, "http://127.0.0.1:8686") {
		t.Errorf("dns+localhost:8686 resolved to %v, want http://127.0.0.1:8686 among them", got)
	}
	// A name that does not resolve is not fatal (it may appear later) and
	// resolves to nothing.
	ps, err = NewPeerSet(context.Background(), PeerSetOptions{Peers: []string{"dns+no-such-host.invalid:8686", "http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := ps.Current(); !slices.Equal(got, []string{"http://127.0.0.1:1"}) {
		t.Errorf("peers = %v, want only the static one", got)
	}
}

func TestMarkJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":1}`, `{"a":1,"partial":true,"missingPeers":["p1","p2"]}`},
		{"{\"a\":1}\n", "{\"a\":1,\"partial\":true,\"missingPeers\":[\"p1\",\"p2\"]}\n"},
		{`{}`, `{"partial":true,"missingPeers":["p1","p2"]}`},
		{`[1,2]`, `[1,2]`},
		{`not json}`, `not json}`},
	}
	for _, tt := range tests {
		if got := string(markJSON([]byte(tt.in), []string{"p1", "p2"})); got != tt.want {
			t.Errorf("markJSON(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
