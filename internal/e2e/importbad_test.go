package e2e

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// garbage is an endless-looking stream of n pseudo-random bytes that counts
// what was read from it.
type garbage struct {
	left int64
	read atomic.Int64
	rng  *rand.ChaCha8
}

func newGarbage(n int64) *garbage {
	return &garbage{left: n, rng: rand.NewChaCha8([32]byte{7})}
}

func (g *garbage) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.left)]
	g.rng.Read(p)
	g.left -= int64(len(p))
	g.read.Add(int64(len(p)))
	return len(p), nil
}

const gigabyte = 1 << 30

// TestImportBadInput feeds malformed files to the import command (uploaded
// to a collector), to the upload endpoint and to the Zipkin receiver, and
// checks that each is refused with an error naming the problem and its
// position, and that the store is unchanged: nothing partial is reported
// as success. A 1 GB stream of garbage is refused from its first bytes.
func TestImportBadInput(t *testing.T) {
	lamp, err := os.ReadFile(spigoDir + "json_metrics/lamp_flow.json")
	if err != nil {
		t.Fatal(err)
	}
	replace := func(old, new string) []byte {
		if !bytes.Contains(lamp, []byte(old)) {
			t.Fatalf("sample lacks %q", old)
		}
		return bytes.Replace(lamp, []byte(old), []byte(new), 1)
	}
	cases := []struct {
		name, file string
		body       []byte
		want       []string // substrings of the error
		zipkinWant []string // of the Zipkin receiver's answer, when it differs
	}{
		{"truncated", "truncated.json", lamp[:3000],
			[]string{"zipkin v1: span 5 at byte 3000", "unexpected end of input"}, nil},
		{"wrong type", "wrongtype.json", replace(`"timestamp":1463590172533902`, `"timestamp":"soon"`),
			[]string{"span 2 at byte 1192", `"annotations[0].timestamp": want a number of microseconds, got string`}, nil},
		{"ID of the wrong length", "badid.json", replace(`"id":"0000000000000005"`, `"id":"00000000000005"`),
			[]string{"span 2 at byte 999", `"id": want 16 hex digits, got 14`}, nil},
		{"unknown format", "notes.txt", []byte("hello, this is not telemetry\n"),
			[]string{"unknown format", `"hello, this is not telemetry\n"`},
			[]string{"zipkin v1", "byte 0"}},
	}
	s := startServer(t, "")
	before := storeState(t, s)
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, tc.body, 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runImport(t, "--to", "http://"+s.addrs.HTTP, path)
			if code != 1 || out != "" {
				t.Errorf("import: exit %d, stdout %q; want 1 and no summary", code, out)
			}
			for _, w := range append([]string{tc.file}, tc.want...) {
				if !strings.Contains(errOut, w) {
					t.Errorf("import error %q lacks %q", errOut, w)
				}
			}
			zcode, _, zbody := post(t, "http://"+s.addrs.Zipkin+"/api/v1/spans", "application/json", "", bytes.NewReader(tc.body))
			zwant := tc.want
			if tc.zipkinWant != nil {
				zwant = tc.zipkinWant
			}
			if zcode != 400 {
				t.Errorf("zipkin receiver: %d %s, want 400", zcode, zbody)
			}
			for _, w := range zwant {
				if !strings.Contains(string(zbody), w) {
					t.Errorf("zipkin receiver answer %q lacks %q", zbody, w)
				}
			}
			if after := storeState(t, s); after != before {
				t.Errorf("store changed: %s, was %s", after, before)
			}
		})
	}

	t.Run("1 GB of garbage uploaded", func(t *testing.T) {
		g := newGarbage(gigabyte)
		req, _ := http.NewRequest("POST", "http://"+s.addrs.HTTP+"/api/v1/import?name=garbage.bin", g)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), "garbage.bin") || !strings.Contains(string(b), "unknown format") {
			t.Errorf("upload: %d %s, want 400 naming the file and the unknown format", resp.StatusCode, b)
		}
		if n := g.read.Load(); n > 64<<20 {
			t.Errorf("%d bytes of garbage read before refusing it", n)
		}
	})
	t.Run("1 GB of garbage to the Zipkin receiver", func(t *testing.T) {
		g := newGarbage(gigabyte)
		code, _, b := post(t, "http://"+s.addrs.Zipkin+"/api/v2/spans", "application/json", "", g)
		if code != 400 && code != 413 {
			t.Errorf("zipkin receiver: %d %s, want 400 or 413", code, b)
		}
		if n := g.read.Load(); n > 64<<20 {
			t.Errorf("%d bytes of garbage read before refusing it", n)
		}
	})
	t.Run("1 GB of garbage imported from a pipe", func(t *testing.T) {
		fifo := filepath.Join(dir, "garbage.fifo")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Skipf("no named pipes here: %v", err)
		}
		g := newGarbage(gigabyte)
		done := make(chan error, 1)
		go func() {
			f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err != nil {
				done <- err
				return
			}
			_, err = io.Copy(f, g)
			f.Close()
			done <- err
		}()
		code, out, errOut := runImport(t, "--to", "http://"+s.addrs.HTTP, fifo)
		if code != 1 || out != "" || !strings.Contains(errOut, "unknown format") {
			t.Errorf("import: exit %d, stdout %q, stderr %q; want 1 and unknown format", code, out, errOut)
		}
		if err := <-done; !errors.Is(err, syscall.EPIPE) {
			t.Errorf("the writer of the pipe ended with %v, want a broken pipe (the importer stopped reading)", err)
		}
		if n := g.read.Load(); n > 64<<20 {
			t.Errorf("%d bytes of garbage read before refusing it", n)
		}
	})
	if after := storeState(t, s); after != before {
		t.Errorf("store changed: %s, was %s", after, before)
	}
}
