package zipkinapi

import (
	"net/url"
	"reflect"
	"testing"
	"time"
)

// TestParseAnnotationQuery checks Zipkin's parsing of annotationQuery
// (QueryRequest.Builder.parseAnnotationQuery).
func TestParseAnnotationQuery(t *testing.T) {
	f := func(in string, want ...term) {
		t.Helper()
		got := parseAnnotationQuery(in)
		if len(want) == 0 {
			want = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("parseAnnotationQuery(%q) = %q, want %q", in, got, want)
		}
	}
	f("")
	f("error", term{Key: "error"})
	f("http.method=GET", term{"http.method", "GET"})
	f("http.uri=/foo and retried", term{"http.uri", "/foo"}, term{Key: "retried"})
	f(" a = b  and c ", term{"a", "b"}, term{Key: "c"})
	f("a=b and\tc", term{"a", "b and\tc"}) // only " and " separates
	f("a=1 and a=2", term{"a", "2"})       // last key=value wins
	f("a=1 and a", term{"a", "1"})         // a key alone does not replace
	f("a and a=1", term{"a", "1"})         // but is replaced, in place
	f("a and b and a=1", term{"a", "1"}, term{Key: "b"})
	f("a=b=c", term{"a", "b=c"}) // split at the first '='
	f("a=", term{Key: "a"})      // an empty value is a key alone
	f("=v", term{"", "v"})
	f("a and ", term{Key: "a"}, term{Key: ""})    // Java keeps trailing empty pieces
	f("a AND b", term{Key: "a AND b"})            // the separator is case-sensitive
	f("a  and b", term{Key: "a"}, term{Key: "b"}) // " and " inside "  and "
	f("x and and y", term{Key: "x"}, term{Key: "and y"})
}

// TestAnnotationQueryLimit checks that at most 100 terms are split, the
// last keeping the rest, as Java's split(" and ", 100).
func TestAnnotationQueryLimit(t *testing.T) {
	q := ""
	for i := range 120 {
		if i > 0 {
			q += " and "
		}
		q += "k" + string(rune('a'+i%26)) + url.QueryEscape(string(rune('0'+i/26)))
	}
	got := parseAnnotationQuery(q)
	if len(got) > 100 {
		t.Fatalf("%d terms", len(got))
	}
	if last := got[len(got)-1].Key; len(last) < 20 {
		t.Errorf("last term %q does not hold the rest", last)
	}
}

// TestParseTraceID checks Zipkin's normalization of trace IDs.
func TestParseTraceID(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{"463ac35c9f6413ad", "463ac35c9f6413ad", ""},
		{"0000000000000000463ac35c9f6413ad", "463ac35c9f6413ad", ""},
		{"5b8efff798038103d269b633813fc60c", "5b8efff798038103d269b633813fc60c", ""},
		{"5B8EFFF798038103D269B633813FC60C", "5b8efff798038103d269b633813fc60c", ""},
		{"abc", "0000000000000abc", ""},
		{"1463ac35c9f6413ad", "0000000000000001463ac35c9f6413ad", ""},
		{"", "", "traceId is empty"},
		{"0", "", "traceId is all zeros"},
		{"00000000000000000000000000000000", "", "traceId is all zeros"},
		{"463ac35c9f6413ad463ac35c9f6413ad0", "", "traceId.length > 32"},
		{"463ac35c9f6413ag", "", "463ac35c9f6413ag should be lower-hex encoded with no prefix"},
		{"-1", "", "-1 should be lower-hex encoded with no prefix"},
		{" 1", "", " 1 should be lower-hex encoded with no prefix"},
	} {
		_, got, err := parseTraceID(tt.in)
		switch {
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("parseTraceID(%q): %v, want error %q", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("parseTraceID(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestParseTraceQuery checks defaults, lower-casing and capping.
func TestParseTraceQuery(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	for _, tt := range []struct {
		query string
		want  traceQuery
	}{
		{"", traceQuery{EndTs: 1_700_000_000_000, Lookback: 86_400_000, Limit: 10}},
		{"serviceName=FrontEnd&remoteServiceName=DB&spanName=GET+%2F&annotationQuery=Error+and+k%3DV&limit=5&endTs=5&lookback=3",
			traceQuery{ServiceName: "frontend", RemoteServiceName: "db", SpanName: "get /",
				Annotations: []term{{Key: "Error"}, {"k", "V"}}, EndTs: 5, Lookback: 3, Limit: 5}},
		{"spanName=ALL&minDuration=10&maxDuration=10", traceQuery{MinDuration: 10, MaxDuration: 10,
			EndTs: 1_700_000_000_000, Lookback: 86_400_000, Limit: 10}},
		{"limit=1000000&limit=3", traceQuery{EndTs: 1_700_000_000_000, Lookback: 86_400_000, Limit: MaxLimit}},
		{"limit=%2B7&annotationQuery=", traceQuery{EndTs: 1_700_000_000_000, Lookback: 86_400_000, Limit: 7}},
		{"serviceName=&remoteServiceName=&spanName=", traceQuery{EndTs: 1_700_000_000_000, Lookback: 86_400_000, Limit: 10}},
	} {
		v, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseTraceQuery(v, now, 24*time.Hour)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %+v, %v\nwant %+v", tt.query, got, err, tt.want)
		}
	}
}
