package zipkin

import (
	"fmt"
	"strings"
	"testing"
)

// halvesInput returns Zipkin v1 JSON as zipkin-js reports it, one body per
// reporter: in client, per trace a root SERVER span and the CLIENT half of
// a call (frontend); in server the SERVER half of that call (backend,
// same span ID, no span-level timestamp).
func halvesInput(traces int) (client, server []byte) {
	var c, s strings.Builder
	c.WriteByte('[')
	s.WriteByte('[')
	for i := range traces {
		if i > 0 {
			c.WriteByte(',')
			s.WriteByte(',')
		}
		root := fmt.Sprintf("%016x", uint64(i)<<20|1)
		call := fmt.Sprintf("%016x", uint64(i)<<20|2)
		t := 1_700_000_000_000_000 + int64(i)*1000
		fmt.Fprintf(&c, `{"traceId":%[1]q,"id":%[1]q,"name":"get /","timestamp":%[3]d,"duration":900,`+
			`"annotations":[{"value":"sr","timestamp":%[3]d,"endpoint":{"serviceName":"frontend","ipv4":"127.0.0.1","port":8081}},`+
			`{"value":"ss","timestamp":%[4]d,"endpoint":{"serviceName":"frontend","ipv4":"127.0.0.1","port":8081}}],`+
			`"binaryAnnotations":[{"key":"http.path","value":"/","endpoint":{"serviceName":"frontend"}}]},`+
			`{"traceId":%[1]q,"parentId":%[1]q,"id":%[2]q,"name":"get","timestamp":%[5]d,"duration":500,`+
			`"annotations":[{"value":"cs","timestamp":%[5]d,"endpoint":{"serviceName":"frontend"}},`+
			`{"value":"cr","timestamp":%[6]d,"endpoint":{"serviceName":"frontend"}}],`+
			`"binaryAnnotations":[{"key":"http.path","value":"/api","endpoint":{"serviceName":"frontend"}},`+
			`{"key":"sa","value":true,"endpoint":{"serviceName":"backend"}}]}`,
			root, call, t, t+900, t+100, t+600)
		fmt.Fprintf(&s, `{"traceId":%[1]q,"parentId":%[1]q,"id":%[2]q,"name":"get",`+
			`"annotations":[{"value":"sr","timestamp":%[3]d,"endpoint":{"serviceName":"backend","ipv4":"127.0.0.1","port":8082}},`+
			`{"value":"ss","timestamp":%[4]d,"endpoint":{"serviceName":"backend","ipv4":"127.0.0.1","port":8082}}],`+
			`"binaryAnnotations":[{"key":"http.path","value":"/api","endpoint":{"serviceName":"backend"}},`+
			`{"key":"http.status_code","value":"200","endpoint":{"serviceName":"backend"}}]}`,
			root, call, t+200, t+500)
	}
	c.WriteByte(']')
	s.WriteByte(']')
	return []byte(c.String()), []byte(s.String())
}

// BenchmarkConvertV1Halves converts zipkin-js-like Zipkin v1 bodies of
// 1,000 traces, the frontend's (root server span and client half) and the
// backend's (server half of the same span ID), as the HTTP handler does:
// one ConvertAll per body with one shared ID memory. It reports ns per
// input span object. Compare runs with
//
//	go test ./ingest/zipkin -run='^$' -bench=ConvertV1Halves -count=6 > new.txt
//	benchstat old.txt new.txt
func BenchmarkConvertV1Halves(b *testing.B) {
	for _, order := range []string{"client-first", "server-first"} {
		b.Run(order, func(b *testing.B) {
			const traces = 1000
			client, server := halvesInput(traces)
			bodies := [][]byte{client, server}
			if order == "server-first" {
				bodies[0], bodies[1] = server, client
			}
			b.SetBytes(int64(len(client) + len(server)))
			b.ReportAllocs()
			var spans int64
			for b.Loop() {
				mem := newIDMemory(DefaultKeepIDs)
				for _, body := range bodies {
					_, st, err := convertAll(body, V1, mem)
					if err != nil {
						b.Fatal(err)
					}
					spans += st.Spans
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
		})
	}
}
