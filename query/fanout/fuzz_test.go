package fanout

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// FuzzParsePeer: any string is parsed or refused with an error naming it,
// never a panic; an accepted one makes a URL that parses back.
func FuzzParsePeer(f *testing.F) {
	for _, s := range []string{"http://10.0.0.1:8686", "dns+nodes.svc:8686", "dnssrv+_http._tcp.x", "https://[::1]:1", "dns+https://a:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := parseSpec(s)
		if err != nil {
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
				t.Fatalf("error %q does not name the peer %q", err, s)
			}
			return
		}
		if sp.kind != "dnssrv" {
			if err := ParsePeer(sp.url(sp.host, sp.port)); err != nil {
				t.Fatalf("%q → %q does not parse back: %v", s, sp.url(sp.host, sp.port), err)
			}
		}
	})
}

// FuzzMarkJSON: a partial mark keeps a JSON object valid and leaves
// anything else untouched.
func FuzzMarkJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,{"b":"}"}]}`, "{\"x\":1}\n", `[]`, `"}"`, `{`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := markJSON([]byte(s), []string{"http://n1:1"})
		var obj map[string]any
		if json.Unmarshal([]byte(s), &obj) != nil || obj == nil {
			if string(out) != s {
				t.Fatalf("non-object %q changed to %q", s, out)
			}
			return
		}
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("marked %q is not JSON: %q: %v", s, out, err)
		}
		if got["partial"] != true {
			t.Fatalf("marked %q has no partial: %q", s, out)
		}
	})
}
