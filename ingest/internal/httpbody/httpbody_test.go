package httpbody

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flowscope/flowscope/ingest/internal/budgetio"
	"github.com/flowscope/flowscope/membudget"
)

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func zl(b []byte) []byte {
	var out bytes.Buffer
	w := zlib.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// failingReader yields some bytes, then an error.
type failingReader struct{ sent bool }

func (f *failingReader) Read(p []byte) (int, error) {
	if !f.sent {
		f.sent = true
		return copy(p, "abc"), nil
	}
	return 0, errors.New("connection reset")
}

func TestRead(t *testing.T) {
	const max = 1000
	plain := bytes.Repeat([]byte("span "), 150) // 750 bytes
	bomb := gz(make([]byte, 100<<10))           // 100 KiB of zeros, about 130 bytes compressed
	over := bytes.Repeat([]byte("x"), max+1)
	tests := []struct {
		name     string
		encoding string
		body     io.Reader
		length   int64 // Content-Length; -1 unknown
		budget   int64 // 0: unlimited
		want     []byte
		kind     Kind
		msg      string
	}{
		{name: "identity", body: bytes.NewReader(plain), length: int64(len(plain)), want: plain},
		{name: "identity named", encoding: "Identity", body: bytes.NewReader(plain), length: -1, want: plain},
		{name: "none", encoding: "none", body: bytes.NewReader(plain), length: -1, want: plain},
		{name: "gzip", encoding: "gzip", body: bytes.NewReader(gz(plain)), length: -1, want: plain},
		{name: "x-gzip", encoding: " X-GZIP ", body: bytes.NewReader(gz(plain)), length: -1, want: plain},
		{name: "deflate", encoding: "deflate", body: bytes.NewReader(zl(plain)), length: -1, want: plain},
		{name: "exactly the limit", body: bytes.NewReader(over[:max]), length: -1, want: over[:max]},
		{name: "empty", body: bytes.NewReader(nil), length: 0, want: []byte{}},
		{name: "declared too large", body: bytes.NewReader(plain), length: max + 1, kind: TooLarge, msg: "request body exceeds 1000 bytes"},
		{name: "one byte over", body: bytes.NewReader(over), length: -1, kind: TooLarge, msg: "request body exceeds 1000 bytes"},
		{name: "bomb", encoding: "gzip", body: bytes.NewReader(bomb), length: -1, kind: TooLarge, msg: "request body exceeds 1000 bytes after decompression"},
		{name: "compressed body over the limit", encoding: "gzip", body: bytes.NewReader(append(gz(nil), make([]byte, 2*max)...)), length: -1, kind: TooLarge},
		{name: "unsupported encoding", encoding: "br", body: bytes.NewReader(plain), length: -1, kind: UnsupportedEncoding, msg: `unsupported Content-Encoding "br": use gzip, deflate or none`},
		{name: "not gzip", encoding: "gzip", body: bytes.NewReader(plain), length: -1, kind: Invalid, msg: "decompress gzip body: gzip: invalid header"},
		{name: "not zlib", encoding: "deflate", body: bytes.NewReader(plain), length: -1, kind: Invalid, msg: "decompress deflate body: zlib: invalid header"},
		{name: "truncated gzip", encoding: "gzip", body: bytes.NewReader(gz(plain)[:20]), length: -1, kind: Invalid, msg: "decompress gzip body: unexpected EOF"},
		{name: "read error", body: &failingReader{}, length: -1, kind: Invalid, msg: "read request body: connection reset"},
		{name: "budget refuses the first step", body: bytes.NewReader(plain), length: int64(len(plain)), budget: 100, kind: OverBudget},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", tc.body)
			r.ContentLength = tc.length
			if tc.encoding != "" {
				r.Header.Set("Content-Encoding", tc.encoding)
			}
			res := budgetio.Reservation{}
			if tc.budget > 0 {
				res.Budget = membudget.New(tc.budget)
			}
			defer res.Release()
			got, err := Read(r, nil, max, &res)
			if tc.kind != 0 {
				if err == nil {
					t.Fatalf("read %d bytes, want a failure of kind %d", len(got), tc.kind)
				}
				if err.Kind != tc.kind || (tc.msg != "" && err.Msg != tc.msg) {
					t.Fatalf("error %d %q, want %d %q", err.Kind, err.Msg, tc.kind, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %d %q", err.Kind, err.Msg)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("read %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
}

// TestReadBombStopsEarly checks that a decompression bomb is not read
// past the limit: of a gzip body of 64 MiB of zeros, only a few KiB of
// the compressed stream are consumed.
func TestReadBombStopsEarly(t *testing.T) {
	bomb := gz(make([]byte, 64<<20))
	src := bytes.NewReader(bomb)
	r := httptest.NewRequest(http.MethodPost, "/", src)
	r.ContentLength = -1
	r.Header.Set("Content-Encoding", "gzip")
	_, err := Read(r, nil, 4096, &budgetio.Reservation{})
	if err == nil || err.Kind != TooLarge {
		t.Fatalf("err = %v, want TooLarge", err)
	}
	if consumed := len(bomb) - src.Len(); consumed > 64<<10 {
		t.Errorf("consumed %d of %d compressed bytes for a 4 KiB limit", consumed, len(bomb))
	}
}

func TestRetryAfter(t *testing.T) {
	if RetryAfter == "" || strings.TrimLeft(RetryAfter, "0123456789") != "" || RetryAfter == "0" {
		t.Errorf("RetryAfter = %q, want whole seconds ≥ 1", RetryAfter)
	}
}

// FuzzRead feeds arbitrary bodies under each encoding: Read never panics,
// never returns more than the limit, returns an Error of a known kind on
// failure, and returns identity bodies within the limit unchanged.
func FuzzRead(f *testing.F) {
	f.Add([]byte("hello"), uint8(0))
	f.Add(gz([]byte("hello")), uint8(1))
	f.Add(zl([]byte("hello")), uint8(2))
	f.Add(gz(make([]byte, 10000)), uint8(1))
	encodings := []string{"", "gzip", "deflate", "x-gzip", "br"}
	const max = 4096
	f.Fuzz(func(t *testing.T, body []byte, enc uint8) {
		e := encodings[int(enc)%len(encodings)]
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.ContentLength = -1
		if e != "" {
			r.Header.Set("Content-Encoding", e)
		}
		got, err := Read(r, nil, max, &budgetio.Reservation{})
		if err != nil {
			if err.Kind < TooLarge || err.Kind > Invalid || err.Msg == "" {
				t.Fatalf("error %+v", err)
			}
			return
		}
		if len(got) > max {
			t.Fatalf("read %d bytes past the limit %d", len(got), max)
		}
		if e == "" && !bytes.Equal(got, body) {
			t.Fatalf("identity body changed")
		}
	})
}
