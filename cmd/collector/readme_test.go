package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestREADMECurlExample runs the README's hand-written OTLP/JSON request
// with bash, curl replaced by a function printing the request body, and
// checks that the span is timed now: a fixed old timestamp would put it
// outside the UI's and the API's default range (the last 15 minutes).
func TestREADMECurlExample(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var block string
	for i, part := range strings.Split(string(readme), "```") {
		if i%2 == 1 && strings.Contains(part, "4318/v1/traces") && strings.Contains(part, "startTimeUnixNano") {
			block = part
		}
	}
	if block == "" {
		t.Fatal("README.md has no curl example posting OTLP/JSON to :4318/v1/traces")
	}
	fake := `curl() { while [ $# -gt 0 ]; do if [ "$1" = -d ]; then printf '%s' "$2"; return; fi; shift; done; }` + "\n"
	before := time.Now()
	out, err := exec.Command(bash, "-euc", fake+block).Output()
	if err != nil {
		t.Fatalf("the example fails in bash: %v\n%s", err, block)
	}
	var req struct {
		ResourceSpans []struct {
			ScopeSpans []struct {
				Spans []struct{ StartTimeUnixNano, EndTimeUnixNano string }
			}
		}
	}
	if err := json.Unmarshal(out, &req); err != nil || len(req.ResourceSpans) != 1 || len(req.ResourceSpans[0].ScopeSpans[0].Spans) != 1 {
		t.Fatalf("the example sends %q: %v", out, err)
	}
	sp := req.ResourceSpans[0].ScopeSpans[0].Spans[0]
	start, err1 := strconv.ParseInt(sp.StartTimeUnixNano, 10, 64)
	end, err2 := strconv.ParseInt(sp.EndTimeUnixNano, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("times %q, %q are not Unix nanoseconds", sp.StartTimeUnixNano, sp.EndTimeUnixNano)
	}
	if at := time.Unix(0, start); at.Before(before.Add(-2*time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("the example's span starts at %v, want now (%v)", at, before)
	}
	if end-start != int64(time.Millisecond) {
		t.Errorf("the example's span lasts %v, want 1ms", time.Duration(end-start))
	}
}
