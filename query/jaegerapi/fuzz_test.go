package jaegerapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzParseQuery feeds query strings to the parameter parser and to every
// endpoint that reads parameters (over a store with nothing). The parser
// must never panic, and what it accepts must be consistent; answers must
// be 200, 400 or 404 with a JSON body (the envelope for errors).
//
//	go test ./query/jaegerapi -run '^$' -fuzz FuzzParseQuery -fuzztime 1m
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"service=a",
		"service=a&operation=GET+%2Fx&start=1&end=2&limit=20&minDuration=1ms&maxDuration=2s",
		`service=a&tag=k:v&tags={"a":"b"}&raw=true&prettyPrint=1`,
		"traceID=abc&traceID=0123456789abcdef0123456789abcdef",
		"limit=-1&service=x&lookback=1h",
		"endTs=1700000000000&lookback=3600000&service=a&spanKind=server",
		"tags=%zz&service=%",
		"service=a&minDuration=-1s&maxDuration=-2s",
	} {
		f.Add(s)
	}
	h := newTestHandler(fakeStore{})
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		form, _ := url.ParseQuery(s) // as ParseForm: keep what parses
		q, err := parseTraceQuery(form, testNow)
		if err == nil {
			if q.service == "" && len(q.traceIDs) == 0 {
				t.Fatalf("%q: accepted without service or traceID", s)
			}
			if q.minDuration != 0 && q.maxDuration != 0 && q.maxDuration < q.minDuration {
				t.Fatalf("%q: accepted maxDuration %v < minDuration %v", s, q.maxDuration, q.minDuration)
			}
			if len(q.traceIDs) != len(form["traceID"]) {
				t.Fatalf("%q: %d trace IDs of %d", s, len(q.traceIDs), len(form["traceID"]))
			}
			for _, id := range q.traceIDs {
				if back, err := parseTraceID(id.String()); err != nil || back != id {
					t.Fatalf("%q: trace ID %s does not read back: %v", s, id, err)
				}
			}
			for _, tag := range form["tag"] {
				k, _, _ := strings.Cut(tag, ":")
				if _, ok := q.tags[k]; !ok {
					t.Fatalf("%q: tag %q lost", s, k)
				}
			}
		}
		for _, path := range []string{"/api/traces", "/api/dependencies", "/api/operations", "/api/traces/c0ffee", "/api/services"} {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.URL.RawQuery = s
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			resp := w.Result()
			body, _ := io.ReadAll(resp.Body)
			if !slices.Contains([]int{200, 400, 404}, resp.StatusCode) {
				t.Fatalf("%s?%s: status %d: %s", path, s, resp.StatusCode, body)
			}
			var e envelope
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("%s?%s: body is not the envelope: %v: %s", path, s, err, body)
			}
			if resp.StatusCode != 200 && (len(e.Errors) != 1 || e.Errors[0].Code != resp.StatusCode) {
				t.Fatalf("%s?%s: error envelope %s", path, s, body)
			}
			if path == "/api/traces" && (err == nil) != (resp.StatusCode == 200) {
				t.Fatalf("%s?%s: parser error %v, status %d", path, s, err, resp.StatusCode)
			}
		}
	})
}

// FuzzParseTraceID checks the trace ID parser against its definition: 1
// to 32 hex digits are an ID, which prints back to the same ID; anything
// else is an error.
//
//	go test ./query/jaegerapi -run '^$' -fuzz FuzzParseTraceID -fuzztime 1m
func FuzzParseTraceID(f *testing.F) {
	for _, s := range []string{"1", "c0ffee", "4bf92f3577b34da6a3ce929d0e0e4736", "14bf92f3577b34da6", "", "0x1", "+1", "1_0", strings.Repeat("f", 33), "G"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseTraceID(s)
		hex := len(s) >= 1 && len(s) <= 32 && strings.Trim(s, "0123456789abcdefABCDEF") == ""
		if (err == nil) != hex {
			t.Fatalf("parseTraceID(%q): error %v, but hex digits: %v", s, err, hex)
		}
		if err != nil {
			return
		}
		str := id.String()
		if len(str) != 16 && len(str) != 32 {
			t.Fatalf("%q prints as %q", s, str)
		}
		if back, err := parseTraceID(str); err != nil || back != id {
			t.Fatalf("%q prints as %q, which reads %v, %v", s, str, back, err)
		}
		if want := strings.TrimLeft(strings.ToLower(s), "0"); strings.TrimLeft(str, "0") != want {
			t.Fatalf("%q prints as %q", s, str)
		}
	})
}

// FuzzConvertTrace converts arbitrary OTLP traces: conversion must never
// panic and its result must always encode as JSON.
//
//	go test ./query/jaegerapi -run '^$' -fuzz FuzzConvertTrace -fuzztime 1m
func FuzzConvertTrace(f *testing.F) {
	_, traces := splitTraces(fixture(f))
	for _, td := range traces {
		b, err := proto.Marshal(td)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		td := &tracepb.TracesData{}
		if proto.Unmarshal(b, td) != nil {
			return
		}
		for _, raw := range []bool{false, true} {
			tr := convertTrace(td, raw)
			if _, err := json.Marshal(tr); err != nil {
				t.Fatalf("raw=%v: %v", raw, err)
			}
			for _, s := range tr.Spans {
				if _, ok := tr.Processes[s.ProcessID]; !ok {
					t.Fatalf("span %s has process %q, not in %v", s.SpanID, s.ProcessID, tr.Processes)
				}
			}
		}
	})
}
