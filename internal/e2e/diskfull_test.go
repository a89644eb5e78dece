package e2e

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

// TestDiskFull runs the collector on a small tmpfs (root only; skipped
// elsewhere — the store's TestDiskFull injects ENOSPC instead) and fills
// it while exporting: a full disk answers 503 with Retry-After (OTLP/HTTP)
// and UNAVAILABLE with RetryInfo (gRPC), /readyz fails and
// flowscope_store_disk_full is 1; once space returns ingest resumes and
// /readyz is 200; after a restart every acknowledged span is found.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs and fills it; skipped under -short")
	}
	mnt := t.TempDir()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	dir := filepath.Join(mnt, "data")
	s := startServer(t, dir)
	conn, err := grpc.NewClient(s.addrs.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := coltracepb.NewTraceServiceClient(conn)
	rng := rand.New(rand.NewPCG(7, 7))
	acked := map[string][]string{}
	export := func(n int) error {
		req, tid, sids := crashBatch(rng, 0, n)
		_, err := client.Export(context.Background(), req)
		if err == nil {
			acked[tid] = sids
		}
		return err
	}
	for n := range 200 {
		if err := export(n); err != nil {
			t.Fatal(err)
		}
	}
	// Fill the file system.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for buf := make([]byte, 1<<20); ; {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	var full error
	for n := 200; n < 5000 && full == nil; n++ {
		full = export(n)
	}
	st := status.Convert(full)
	if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "disk full") {
		t.Fatalf("gRPC export on a full disk: %v, want UNAVAILABLE naming the full disk", full)
	}
	if !hasRetryInfo(st) {
		t.Errorf("gRPC UNAVAILABLE without RetryInfo: %v", st.Details())
	}
	req, _, _ := crashBatch(rng, 1, 0)
	body, _ := proto.Marshal(req)
	code, hdr, msg := post(t, "http://"+s.addrs.OTLPHTTP+"/v1/traces", "application/x-protobuf", "", bytes.NewReader(body))
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("OTLP/HTTP on a full disk: %d Retry-After %q %.200s, want 503 with Retry-After", code, hdr.Get("Retry-After"), msg)
	}
	if code, body := s.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz on a full disk: %d %s", code, body)
	}
	if v := selfMetric(t, s, "flowscope_store_disk_full"); v != 1 {
		t.Errorf("flowscope_store_disk_full = %v on a full disk", v)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 100; n++ {
		if err := export(5000 + n); err != nil {
			t.Fatalf("export after space returned: %v", err)
		}
	}
	if code, body := s.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after space returned: %d %s", code, body)
	}
	if v := selfMetric(t, s, "flowscope_store_disk_full"); v != 0 {
		t.Errorf("flowscope_store_disk_full = %v after space returned", v)
	}
	s.stop(t)
	s = startServer(t, dir)
	for tid, sids := range acked {
		code, body := s.get(t, "/api/v1/traces/"+tid)
		if code != http.StatusOK {
			t.Fatalf("acknowledged trace %s after restart: %d %.200s", tid, code, body)
		}
		for _, sid := range sids {
			if !bytes.Contains(bytes.ToLower(body), []byte(sid)) {
				t.Fatalf("acknowledged span %s of trace %s missing after restart", sid, tid)
			}
		}
	}
	t.Logf("%d acknowledged traces found after the restart", len(acked))
}

func hasRetryInfo(st *status.Status) bool {
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			return true
		}
	}
	return false
}

// selfMetric returns the value of an unlabelled self-metric from /metrics.
func selfMetric(t *testing.T, s *server, name string) float64 {
	t.Helper()
	code, body := s.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("%s not in /metrics", name)
	return 0
}
