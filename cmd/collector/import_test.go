package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
)

// TestImportAgain imports a file into a store directory, then again: the
// second import sends nothing and says so; --force imports it again.
func TestImportAgain(t *testing.T) {
	dir := t.TempDir()
	const file = "../../testdata/spigo/json_metrics/lamp_flow.json"
	cases := []struct {
		name       string
		args       []string
		want, skip string // in stdout; must not be in stdout
	}{
		{"first", nil, "requests:     1", "already:"},
		{"again", nil, "already:      imported", "requests:     1"},
		{"forced", []string{"--force"}, "requests:     1", "already:"},
		{"json", []string{"--json"}, `"alreadyImported": true`, "already:"},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		args := append([]string{"--data-dir", dir, "--progress", "none"}, tc.args...)
		if code := importCmd(append(args, file), &stdout, &stderr); code != exitOK {
			t.Fatalf("%s: exit %d: %s", tc.name, code, stderr.String())
		}
		out := stdout.String()
		if !strings.Contains(out, tc.want) || strings.Contains(out, tc.skip) {
			t.Errorf("%s: output lacks %q or has %q:\n%s", tc.name, tc.want, tc.skip, out)
		}
	}
}

// TestImportErrors checks the one-line errors of imports that cannot work:
// each names the problem once, without control characters or the raw
// bytes of a server that is not a collector.
func TestImportErrors(t *testing.T) {
	const file = "../../testdata/spigo/json_metrics/lamp_flow.json"
	// An OTLP/HTTP port answers an unknown path with a protobuf Status.
	protobufSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("\x08\x0c\x12Hno OTLP endpoint at \"/api/v1/import\"\x1a\x00\x7f"))
	}))
	t.Cleanup(protobufSrv.Close)
	// A server answering 200 with HTML: not a summary.
	htmlSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html><body>hello</body></html>"))
	}))
	t.Cleanup(htmlSrv.Close)
	// A text answer is quoted, on one line.
	textSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no Zipkin endpoint at \"/api/v1/import\":\nuse POST /api/v2/spans", http.StatusNotFound)
	}))
	t.Cleanup(textSrv.Close)
	// A gRPC port answers HTTP/1.1 with an HTTP/2 frame.
	grpcLike := binaryListener(t, "\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x05\x00\x00@\x00")
	// A port with nothing listening.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	// A store directory whose file is a directory: the path once.
	badStore := t.TempDir()
	if err := os.Mkdir(filepath.Join(badStore, "flowscope.db"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	tests := []struct {
		name string
		args []string
		want []string // in stderr
		not  []string // not in stderr
	}{
		{
			name: "protobuf answer",
			args: []string{"--to", protobufSrv.URL, file},
			want: []string{"404 Not Found: a body of", "(application/x-protobuf)", "the HTTP port of a collector? it is 8686 by default"},
			not:  []string{"no OTLP endpoint"},
		},
		{
			name: "HTML answer",
			args: []string{"--to", htmlSrv.URL, file},
			want: []string{"200 OK, but not an import summary: a body of 31 B (text/html)"},
		},
		{
			name: "text answer",
			args: []string{"--to", textSrv.URL, file},
			want: []string{`404 Not Found: "no Zipkin endpoint at \"/api/v1/import\": use POST /api/v2/spans"`},
		},
		{
			name: "not HTTP/1.1",
			args: []string{"--to", "http://" + grpcLike, file},
			want: []string{"the server did not answer in HTTP/1.1 (is " + grpcLike + " the HTTP port of a collector?"},
			not:  []string{`\x00`, "malformed"},
		},
		{
			name: "nothing listening",
			args: []string{"--to", "http://" + closedAddr, file},
			want: []string{"connection refused", "is a collector running there? or import with --data-dir"},
		},
		{
			name: "directory, sent",
			args: []string{dir},
			want: []string{dir + " is a directory; name the files in it, such as " + filepath.Join(dir, "*.json")},
			not:  []string{"collector running"},
		},
		{
			name: "directory, to a store",
			args: []string{"--data-dir", t.TempDir(), dir},
			want: []string{dir + " is a directory; name the files in it"},
		},
		{
			name: "store file is a directory",
			args: []string{"--data-dir", badStore, file},
			want: []string{"is a directory"},
			not:  []string{"collector running"},
		},
		{
			name: "unknown flag",
			args: []string{"--too", "x", file},
			want: []string{"collector import: flag provided but not defined: --too\nRun \"collector import --help\""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := importCmd(append([]string{"--progress", "none"}, tc.args...), &stdout, &stderr)
			if code == exitOK {
				t.Fatalf("exit 0, want a failure; stdout %q", stdout.String())
			}
			out := stderr.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("stderr lacks %q:\n%s", w, out)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out, n) {
					t.Errorf("stderr has %q:\n%s", n, out)
				}
			}
			if strings.ContainsFunc(out, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) {
				t.Errorf("stderr has control characters: %q", out)
			}
			if tc.name == "store file is a directory" {
				if path := filepath.Join(badStore, "flowscope.db"); strings.Count(out, path) != 1 {
					t.Errorf("stderr names %s %d times, want once: %s", path, strings.Count(out, path), out)
				}
			}
			if tc.name != "unknown flag" && strings.Count(strings.TrimSpace(out), "\n") != 0 {
				t.Errorf("stderr has more than one line:\n%s", out)
			}
		})
	}
}

// binaryListener serves every connection the bytes of answer, whatever it
// receives, and returns its address.
func binaryListener(t *testing.T, answer string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Read(make([]byte, 4096))
			c.Write([]byte(answer))
			// Keep reading, as a gRPC server does, until the client gives
			// up: closing while it still writes its body would make its
			// error a write error ("use of closed network connection")
			// rather than the answer it read.
			c.SetReadDeadline(time.Now().Add(time.Second))
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}

// TestDescribeBody checks how unexpected answers are shown.
func TestDescribeBody(t *testing.T) {
	f := func(contentType, body, want string) {
		t.Helper()
		if got := describeBody(contentType, []byte(body)); got != want {
			t.Errorf("describeBody(%q, %q) = %q, want %q", contentType, body, got, want)
		}
	}
	f("text/plain; charset=utf-8", "not found\n", `"not found"`)
	f("", "  two\nlines ", `"two lines"`)
	f("application/json", `{"code":5}`, `"{\"code\":5}"`)
	f("application/x-protobuf", "\x08\x05", "a body of 2 B (application/x-protobuf)")
	f("text/plain", "bell\x07", "a body of 5 B (text/plain)")
	f("text/html", "<p>hi</p>", "a body of 9 B (text/html)")
	f("", "\xff\xfe", "a body of 2 B (no content type)")
	f("text/plain", "", "empty body")
	f("text/plain", strings.Repeat("é", 150), strconv.Quote(strings.Repeat("é", 100)+"…"))
}
