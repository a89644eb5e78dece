package otlpjson

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestMarshalTracesDataGolden pins the OTLP/JSON that MarshalTracesData
// writes (the body of the query API's GET /traces/{traceId}). Regenerate with
//
//	go test ./ingest/otlpjson -run Golden -update
//
// The golden files hold the output indented for review; the test also checks
// that the output itself is compact.
func TestMarshalTracesDataGolden(t *testing.T) {
	for _, name := range []string{"traces_checkout", "traces_lenient"} {
		t.Run(name, func(t *testing.T) {
			td, err := UnmarshalTracesData(readTestdata(t, name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			out, err := MarshalTracesData(td)
			if err != nil {
				t.Fatal(err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, out); err != nil {
				t.Fatalf("output is not JSON: %v", err)
			}
			if !bytes.Equal(compact.Bytes(), out) {
				t.Error("output is not compact")
			}
			var indented bytes.Buffer
			if err := json.Indent(&indented, out, "", "  "); err != nil {
				t.Fatal(err)
			}
			indented.WriteByte('\n')
			golden := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, indented.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(indented.Bytes(), want) {
				t.Errorf("output differs from %s (run with -update if the change is intended):\n%s",
					golden, firstDiff(indented.String(), string(want)))
			}
		})
	}
}

// firstDiff shows the first differing line of got and want.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + itoa(i+1) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return ""
}
