package query

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/query/querypb"
	"github.com/flowscope/flowscope/store"
)

var testNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// wantInvalid checks that err is an InvalidArgument status whose message
// contains want.
func wantInvalid(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want InvalidArgument containing %q", want)
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		t.Fatalf("got %v, want InvalidArgument", err)
	}
	if !strings.Contains(st.Message(), want) {
		t.Fatalf("message %q does not contain %q", st.Message(), want)
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		name       string
		start, end string
		wantStart  time.Time
		wantEnd    time.Time
		wantErr    string
	}{
		{name: "defaults", wantStart: testNow.Add(-15 * time.Minute), wantEnd: testNow},
		{
			name: "rfc3339", start: "2024-05-01T10:00:00Z", end: "2024-05-01T11:00:00.5+01:00",
			wantStart: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
			wantEnd:   time.Date(2024, 5, 1, 10, 0, 0, 500_000_000, time.UTC),
		},
		{
			name: "unix millis", start: "1714557600000", end: "1714557600123",
			wantStart: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
			wantEnd:   time.Date(2024, 5, 1, 10, 0, 0, 123_000_000, time.UTC),
		},
		{
			name: "start only", start: "1714557600000",
			wantStart: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), wantEnd: testNow,
		},
		{
			name: "end only", end: "2024-05-01T10:00:00Z",
			wantStart: time.Date(2024, 5, 1, 9, 45, 0, 0, time.UTC),
			wantEnd:   time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
		},
		{
			name: "equal", start: "1714557600000", end: "1714557600000",
			wantStart: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
			wantEnd:   time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
		},
		{name: "end before start", start: "2024-05-01T10:00:00Z", end: "2024-05-01T09:00:00Z", wantErr: "invalid end"},
		{name: "bad start", start: "yesterday", wantErr: `invalid start "yesterday"`},
		{name: "bad end", end: "2024-05-01", wantErr: `invalid end "2024-05-01"`},
		{name: "negative millis", start: "-1000", wantErr: `invalid start "-1000"`},
		{name: "seconds with fraction", start: "1714557600.5", wantErr: `invalid start`},
		{name: "millis overflow", end: "99999999999999999999", wantErr: `invalid end "99999999999999999999": Unix milliseconds out of range`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end, err := parseRange(tt.start, tt.end, testNow)
			if tt.wantErr != "" {
				wantInvalid(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !start.Equal(tt.wantStart) || !end.Equal(tt.wantEnd) {
				t.Errorf("got [%v, %v], want [%v, %v]", start, end, tt.wantStart, tt.wantEnd)
			}
		})
	}
}

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in      int32
		want    int
		wantErr string
	}{
		{in: 0, want: store.DefaultSearchLimit},
		{in: 1, want: 1},
		{in: 1000, want: 1000},
		{in: 1001, wantErr: "invalid limit 1001: must be at most 1000"},
		{in: -1, wantErr: "invalid limit -1"},
	}
	for _, tt := range tests {
		got, err := parseLimit(tt.in)
		if tt.wantErr != "" {
			wantInvalid(t, err, tt.wantErr)
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseLimit(%d) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseTraceID(t *testing.T) {
	full := store.TraceID{0x5b, 0x8e, 0xfa, 0xf1, 0x6e, 0x7d, 0x4c, 0x90, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18}
	short := store.TraceID{8: 0xa1, 9: 0xb2, 10: 0xc3, 11: 0xd4, 12: 0xe5, 13: 0xf6, 14: 0x07, 15: 0x18}
	tests := []struct {
		in      string
		want    store.TraceID
		wantErr string
	}{
		{in: "5b8efaf16e7d4c90a1b2c3d4e5f60718", want: full},
		{in: "5B8EFAF16E7D4C90A1B2C3D4E5F60718", want: full},
		{in: "a1b2c3d4e5f60718", want: short},
		{in: "0000000000000000a1b2c3d4e5f60718", want: short},
		{in: "", wantErr: `invalid traceId "": want 32 or 16 hex digits`},
		{in: "abc", wantErr: `invalid traceId "abc"`},
		{in: "5b8efaf16e7d4c90a1b2c3d4e5f6071", wantErr: "want 32 or 16 hex digits"},
		{in: "zb8efaf16e7d4c90a1b2c3d4e5f60718", wantErr: "want 32 or 16 hex digits"},
		{in: "00000000000000000000000000000000", wantErr: "all zeros"},
		{in: "0000000000000000", wantErr: "all zeros"},
	}
	for _, tt := range tests {
		got, err := ParseTraceID(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseTraceID(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTraceID(%q) = %x, %v; want %x", tt.in, got, err, tt.want)
		}
	}
	if got := short.String(); got != "0000000000000000a1b2c3d4e5f60718" {
		t.Errorf("TraceID.String() = %s", got)
	}
}

func TestTraceQuery(t *testing.T) {
	tests := []struct {
		name    string
		req     *querypb.SearchTracesRequest
		want    store.TraceQuery
		wantErr string
	}{
		{
			name: "defaults",
			req:  &querypb.SearchTracesRequest{},
			want: store.TraceQuery{Start: testNow.Add(-15 * time.Minute), End: testNow, Limit: 20},
		},
		{
			name: "all set",
			req: &querypb.SearchTracesRequest{
				Service: "checkout", Operation: "GET /cart", Start: "1714557600000", End: "2024-05-01T11:00:00Z",
				MinDuration: "250us", MaxDuration: "1.5s", Attributes: map[string]string{"http.route": "/cart"}, Limit: 1000,
				Status: "error",
			},
			want: store.TraceQuery{
				Service: "checkout", Operation: "GET /cart",
				Start: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), End: time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC),
				MinDuration: 250 * time.Microsecond, MaxDuration: 1500 * time.Millisecond,
				Attributes: map[string]string{"http.route": "/cart"}, Limit: 1000, Status: store.TraceStatusError,
			},
		},
		{
			name: "status ok",
			req:  &querypb.SearchTracesRequest{Status: "ok", Limit: 5},
			want: store.TraceQuery{Start: testNow.Add(-15 * time.Minute), End: testNow, Limit: 5, Status: store.TraceStatusOK},
		},
		{
			name: "status error",
			req:  &querypb.SearchTracesRequest{Status: "error"},
			want: store.TraceQuery{Start: testNow.Add(-15 * time.Minute), End: testNow, Limit: 20, Status: store.TraceStatusError},
		},
		{name: "bad status", req: &querypb.SearchTracesRequest{Status: "failed"}, wantErr: `invalid status "failed": want error or ok`},
		{name: "status upper case", req: &querypb.SearchTracesRequest{Status: "ERROR"}, wantErr: `invalid status "ERROR"`},
		{name: "status true", req: &querypb.SearchTracesRequest{Status: "true"}, wantErr: `invalid status "true"`},
		{name: "integer duration", req: &querypb.SearchTracesRequest{MinDuration: "1500"}, wantErr: `invalid minDuration "1500"`},
		{name: "bad duration", req: &querypb.SearchTracesRequest{MaxDuration: "fast"}, wantErr: `invalid maxDuration "fast"`},
		{name: "negative duration", req: &querypb.SearchTracesRequest{MinDuration: "-1s"}, wantErr: `invalid minDuration "-1s": must not be negative`},
		{name: "max below min", req: &querypb.SearchTracesRequest{MinDuration: "2s", MaxDuration: "1s"}, wantErr: `invalid maxDuration "1s"`},
		{name: "limit too big", req: &querypb.SearchTracesRequest{Limit: 1001}, wantErr: "invalid limit 1001"},
		{name: "empty attribute key", req: &querypb.SearchTracesRequest{Attributes: map[string]string{"": "x"}}, wantErr: "invalid attributes"},
		{name: "bad start", req: &querypb.SearchTracesRequest{Start: "soon"}, wantErr: `invalid start "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := traceQuery(tt.req, testNow)
			if tt.wantErr != "" {
				wantInvalid(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equalQuery(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func equalQuery(a, b store.TraceQuery) bool {
	if len(a.Attributes) != len(b.Attributes) {
		return false
	}
	for k, v := range a.Attributes {
		if bv, ok := b.Attributes[k]; !ok || bv != v {
			return false
		}
	}
	a.Attributes, b.Attributes = nil, nil
	return a.Start.Equal(b.Start) && a.End.Equal(b.End) &&
		a.Service == b.Service && a.Operation == b.Operation &&
		a.MinDuration == b.MinDuration && a.MaxDuration == b.MaxDuration && a.Limit == b.Limit &&
		a.Status == b.Status && a.Source == b.Source && a.Target == b.Target
}

func TestParseQuantiles(t *testing.T) {
	if got, err := parseQuantiles(nil); err != nil || len(got) != 4 || got[3] != 0.999 {
		t.Errorf("default quantiles = %v, %v", got, err)
	}
	if got, err := parseQuantiles([]float64{0, 0.5, 1}); err != nil || len(got) != 3 {
		t.Errorf("parseQuantiles([0 0.5 1]) = %v, %v", got, err)
	}
	wantInvalid(t, func() error { _, err := parseQuantiles([]float64{0.5, 99}); return err }(), "invalid quantiles 99")
	wantInvalid(t, func() error { _, err := parseQuantiles([]float64{-0.1}); return err }(), "invalid quantiles -0.1")
}

// TestQueryParser covers the REST query string parsing of the gateway.
func TestQueryParser(t *testing.T) {
	tests := []struct {
		name    string
		msg     proto.Message
		query   string
		want    proto.Message
		wantErr string
	}{
		{
			name:  "search",
			msg:   &querypb.SearchTracesRequest{},
			query: "service=checkout&operation=GET+%2Fcart&minDuration=150ms&max_duration=2s&limit=5&start=1714557600000&end=2024-05-01T11:00:00Z",
			want: &querypb.SearchTracesRequest{
				Service: "checkout", Operation: "GET /cart", MinDuration: "150ms", MaxDuration: "2s", Limit: 5,
				Start: "1714557600000", End: "2024-05-01T11:00:00Z",
			},
		},
		{
			name:  "attributes with dots",
			msg:   &querypb.SearchTracesRequest{},
			query: "attr.http.route=%2Fcart&attr.correlation.id=req-42&attr.k=a%3Db&attr.empty=",
			want: &querypb.SearchTracesRequest{Attributes: map[string]string{
				"http.route": "/cart", "correlation.id": "req-42", "k": "a=b", "empty": "",
			}},
		},
		{name: "attribute twice", msg: &querypb.SearchTracesRequest{}, query: "attr.k=a&attr.k=b", wantErr: `parameter "attr.k" given 2 times`},
		{name: "empty attribute key", msg: &querypb.SearchTracesRequest{}, query: "attr.=x", wantErr: "invalid attr.: empty attribute key"},
		{name: "attribute on other request", msg: &querypb.ListServicesRequest{}, query: "attr.k=v", wantErr: `unknown parameter "attr.k"`},
		{name: "unknown parameter", msg: &querypb.SearchTracesRequest{}, query: "servce=x", wantErr: `unknown parameter "servce"`},
		{name: "bad limit", msg: &querypb.SearchTracesRequest{}, query: "limit=ten", wantErr: `invalid limit "ten": invalid syntax`},
		{name: "limit overflow", msg: &querypb.SearchTracesRequest{}, query: "limit=99999999999", wantErr: `invalid limit "99999999999": value out of range`},
		{name: "limit twice", msg: &querypb.SearchTracesRequest{}, query: "limit=1&limit=2", wantErr: `parameter "limit" given 2 times`},
		{name: "two spellings", msg: &querypb.SearchTracesRequest{}, query: "minDuration=1s&min_duration=2s", wantErr: `parameter "min_duration" given twice (also as "minDuration")`},
		{name: "map syntax refused", msg: &querypb.SearchTracesRequest{}, query: "attributes=x", wantErr: `unknown parameter "attributes"`},
		{
			name: "quantiles comma separated", msg: &querypb.GetMetricRequest{}, query: "quantiles=0.5,0.99&quantiles=0.999",
			want: &querypb.GetMetricRequest{Quantiles: []float64{0.5, 0.99, 0.999}},
		},
		{name: "bad quantile", msg: &querypb.GetMetricRequest{}, query: "quantiles=0.5,p99", wantErr: `invalid quantiles "p99": invalid syntax`},
		{name: "path parameter ignored", msg: &querypb.GetMetricRequest{}, query: "name=other", want: &querypb.GetMetricRequest{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			filter := utilitiesFilter(t, tt.msg)
			err = queryParser{}.Parse(tt.msg, values, filter)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(tt.msg, tt.want) {
				t.Errorf("got %v, want %v", tt.msg, tt.want)
			}
		})
	}
}

// utilitiesFilter returns the path-parameter filter the generated gateway
// code passes for msg.
func utilitiesFilter(t *testing.T, msg proto.Message) *utilities.DoubleArray {
	t.Helper()
	switch msg.(type) {
	case *querypb.GetMetricRequest:
		return utilities.NewDoubleArray([][]string{{"name"}})
	case *querypb.GetCorrelationRequest:
		return utilities.NewDoubleArray([][]string{{"id"}})
	}
	return utilities.NewDoubleArray(nil)
}
