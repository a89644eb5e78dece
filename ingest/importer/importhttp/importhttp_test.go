package importhttp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/ingest/importer"
	"github.com/flowscope/flowscope/ingest/storesink"
	"github.com/flowscope/flowscope/store"
)

const lampFlow = "../../../testdata/spigo/json_metrics/lamp_flow.json"

// startUpload serves the upload handler, importing into a new store, on
// a loopback port with the collector's server timeouts, and returns its
// address. o's Sink, MaxBytes and SpoolDir are filled in.
func startUpload(t *testing.T, o Options) string {
	t.Helper()
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o.Sink, o.MaxBytes, o.SpoolDir = storesink.New(db), 1<<30, t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+Path, NewHandler(o))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		db.Close()
	})
	return l.Addr().String()
}

// postImport uploads the file at path and returns the status and the
// decoded summary.
func postImport(t *testing.T, addr, path, query string) (int, importer.Summary, string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Post("http://"+addr+Path+"?name="+filepath.Base(path)+query, "application/octet-stream", f)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var sum importer.Summary
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &sum); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
	}
	return resp.StatusCode, sum, string(b)
}

// TestUploadReimport uploads the same file three times: the second
// upload is skipped as already imported, force=true imports it again.
func TestUploadReimport(t *testing.T) {
	addr := startUpload(t, Options{})
	cases := []struct {
		name         string
		query        string
		wantSkipped  bool
		wantRequests int64
	}{
		{"first", "", false, 1},
		{"again", "", true, 0},
		{"forced", "&force=true", false, 1},
		{"again after force", "&force=false", true, 0},
	}
	for _, tc := range cases {
		status, sum, body := postImport(t, addr, lampFlow, tc.query)
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.name, status, body)
		}
		if sum.AlreadyImported != tc.wantSkipped || sum.Requests != tc.wantRequests || (tc.wantSkipped && sum.Previous == nil) {
			t.Errorf("%s: %s", tc.name, body)
		}
	}
	if status, _, body := postImport(t, addr, lampFlow, "&force=maybe"); status != http.StatusBadRequest {
		t.Errorf("force=maybe: %d %s", status, body)
	}
}

// TestUploadStallFreesSlot sends the start of an upload and stalls: the
// upload must be answered 408 within the stall timeout, freeing the only
// import slot, so that the next import succeeds. (It used to hold the
// slot for an hour.)
func TestUploadStallFreesSlot(t *testing.T) {
	addr := startUpload(t, Options{StallTimeout: 500 * time.Millisecond})
	cases := []struct {
		name string
		head string // request head, with %s for the path
		body string // what is sent before stalling
	}{
		{"raw body", "POST %s?name=stall.json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n", `[{"traceId":"`},
		{"multipart", "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: 1000000\r\n\r\n",
			"--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"stall.json\"\r\n\r\n[{"},
		{"headers only", "POST %s?name=stall.json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := fmt.Fprintf(conn, tc.head+tc.body, Path); err != nil {
				t.Fatal(err)
			}
			// Bounded wait: generous for a loaded machine, far below the
			// old hour.
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer to the stalled upload: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "stalled") {
				t.Fatalf("stalled upload: %d %s", resp.StatusCode, b)
			}
			if status, _, body := postImport(t, addr, lampFlow, "&force=true"); status != http.StatusOK {
				t.Fatalf("import after the stalled upload: %d %s", status, body)
			}
		})
	}
}

// TestUploadSlowButMoving keeps an upload moving slowly (a chunk per
// half stall timeout): it must not time out.
func TestUploadSlowButMoving(t *testing.T) {
	addr := startUpload(t, Options{StallTimeout: time.Second, ProgressBytes: 1024})
	data, err := os.ReadFile(lampFlow)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		for len(data) > 0 {
			n := min(4096, len(data))
			if _, err := pw.Write(data[:n]); err != nil {
				return
			}
			data = data[n:]
			time.Sleep(300 * time.Millisecond)
		}
		pw.Close()
	}()
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Post("http://"+addr+Path+"?name=slow.json", "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("slow upload: %d %s", resp.StatusCode, b)
	}
}

// TestUploadTooSlowOverall trickles an upload that never stalls but
// averages less than Options.MinRate: it ends at the deadline of the whole
// upload with 408.
func TestUploadTooSlowOverall(t *testing.T) {
	addr := startUpload(t, Options{StallTimeout: time.Second, ProgressBytes: 16, MinRate: 1024})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// 4 KiB at 1 KiB/s: 1 s + 4 s allowed; sent at about 160 B/s.
	fmt.Fprintf(conn, "POST %s?name=slow.json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4096\r\n\r\n[", Path)
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Errorf("no answer to the slow upload: %v", err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "slower than") {
			t.Errorf("slow upload: %d %s", resp.StatusCode, b)
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for sent := 1; sent < 4096; sent += 16 {
		select {
		case <-answered:
			return
		case <-tick.C:
		}
		if _, err := io.WriteString(conn, strings.Repeat(" ", 16)); err != nil {
			break
		}
	}
	<-answered
}

// TestUploadName checks the name an upload is recorded under: ?name='s
// last element, else the multipart file name, else "upload" — never the
// "." that filepath.Base makes of an empty name.
func TestUploadName(t *testing.T) {
	addr := startUpload(t, Options{})
	data, err := os.ReadFile(lampFlow)
	if err != nil {
		t.Fatal(err)
	}
	upload := func(query string, multi bool) string {
		t.Helper()
		var body bytes.Buffer
		ct := "application/octet-stream"
		if multi {
			mw := multipart.NewWriter(&body)
			fw, err := mw.CreateFormFile("file", "lamp_from_form.json")
			if err != nil {
				t.Fatal(err)
			}
			fw.Write(data)
			mw.Close()
			ct = mw.FormDataContentType()
		} else {
			body.Write(data)
		}
		resp, err := http.Post("http://"+addr+Path+query, ct, &body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sum importer.Summary
		if err := json.NewDecoder(resp.Body).Decode(&sum); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("upload %s: %d %v", query, resp.StatusCode, err)
		}
		return sum.Name
	}
	for _, tt := range []struct {
		query string
		multi bool
		want  string
	}{
		{"?force=true", true, "lamp_from_form.json"},
		{"?name=&force=true", true, "lamp_from_form.json"},
		{"?name=dir/given.json&force=true", true, "given.json"},
		{"?name=/&force=true", false, "upload"},
		{"?force=true", false, "upload"},
	} {
		if got := upload(tt.query, tt.multi); got != tt.want {
			t.Errorf("upload %s (multipart %v) recorded as %q, want %q", tt.query, tt.multi, got, tt.want)
		}
	}
}
