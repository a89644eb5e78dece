package query

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/flowscope/flowscope/internal/otlptest"
	"github.com/flowscope/flowscope/store"
)

// TestGatewayPoisonedTrace stores, through the store's own write path (the
// receivers would refuse it), a trace with a span whose name is invalid
// UTF-8 and a span with 10,000 nested kvlists, as an older version could
// have stored them, and checks the REST gateway answers 200 with the whole
// trace, the bad spans marked with store.DecodeErrorAttribute.
func TestGatewayPoisonedTrace(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	field := func(w []byte, num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(w, num, protowire.BytesType), v)
	}
	start := uint64(time.Now().Add(-time.Minute).UnixNano())
	span := func(id uint64, name string, extra []byte) []byte {
		w := field(nil, 1, otlptest.TraceID(7))
		w = field(w, 2, otlptest.SpanID(id))
		w = field(w, 5, []byte(name))
		w = protowire.AppendFixed64(protowire.AppendTag(w, 7, protowire.Fixed64Type), start)
		w = protowire.AppendFixed64(protowire.AppendTag(w, 8, protowire.Fixed64Type), start+1000)
		return append(w, extra...)
	}
	// An AnyValue of 10,000 nested kvlists: sizes from the inside out,
	// then the headers from the outside in (linear, unlike wrapping).
	const levels = 10_000
	leaf := field(nil, 1, []byte("leaf"))
	anyLen, listLen, kvLen := make([]int, levels+1), make([]int, levels+1), make([]int, levels+1)
	anyLen[0] = len(leaf)
	for i := 1; i <= levels; i++ {
		kvLen[i] = 3 + 1 + protowire.SizeBytes(anyLen[i-1]) // key "k", then the value
		listLen[i] = 1 + protowire.SizeBytes(kvLen[i])
		anyLen[i] = 1 + protowire.SizeBytes(listLen[i])
	}
	header := func(w []byte, num protowire.Number, n int) []byte {
		return protowire.AppendVarint(protowire.AppendTag(w, num, protowire.BytesType), uint64(n))
	}
	deep := make([]byte, 0, anyLen[levels])
	for i := levels; i >= 1; i-- {
		deep = header(deep, 6, listLen[i])  // AnyValue.kvlist_value
		deep = header(deep, 1, kvLen[i])    // KeyValueList.values
		deep = field(deep, 1, []byte("k"))  // KeyValue.key
		deep = header(deep, 2, anyLen[i-1]) // KeyValue.value
	}
	deep = append(deep, leaf...)
	scope := field(nil, 2, span(1, "good", nil))
	scope = field(scope, 2, span(2, "bad\xffname", nil))
	scope = field(scope, 2, span(3, "deep", field(nil, 9, field(field(nil, 1, []byte("k")), 2, deep))))
	resource := field(nil, 1, field(field(nil, 1, []byte("service.name")), 2, field(nil, 1, []byte("svc"))))
	req := field(nil, 1, field(field(nil, 1, resource), 2, scope))
	if res, err := db.WriteTraces(t.Context(), req); err != nil || res.Accepted != 3 {
		t.Fatalf("write: %+v, %v", res, err)
	}

	h, err := NewGatewayHandler(t.Context(), newTestService(db))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/api/v1/traces/" + hex.EncodeToString(otlptest.TraceID(7)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, want := range []string{`"name":"good"`, `"name":"bad\ufffdname"`, `"name":"deep"`, `"key":"` + store.DecodeErrorAttribute + `"`} {
		if !strings.Contains(string(body), want) && !strings.Contains(string(body), strings.ReplaceAll(want, `\ufffd`, "\uFFFD")) {
			t.Errorf("response lacks %s: %.2000s", want, body)
		}
	}
}
