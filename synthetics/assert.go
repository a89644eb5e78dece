package synthetics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/flowscope/flowscope/store"
	"github.com/flowscope/flowscope/synthetics/checks"
)

// maxValue caps a JSON or header value shown in an assertion's Actual.
const maxValue = 256

// Actual values of assertions that saw no value.
const (
	noResponse = "no response"
	noMatch    = "no match"
	notJSON    = "body is not JSON"
	absent     = "absent"
)

// response is what a step's extracts and assertions look at.
type response struct {
	status  int
	header  http.Header
	body    []byte
	latency time.Duration

	decoded bool
	doc     any
	docErr  error
}

// json returns the body decoded as JSON (once).
func (r *response) json() (any, error) {
	if !r.decoded {
		r.decoded = true
		if err := json.Unmarshal(r.body, &r.doc); err != nil {
			r.docErr = fmt.Errorf("%s: %w", notJSON, err)
		}
	}
	return r.doc, r.docErr
}

// first returns the first value path selects in the body.
func (r *response) first(path *checks.JSONPath) (any, bool, error) {
	doc, err := r.json()
	if err != nil {
		return nil, false, err
	}
	m := path.Eval(doc)
	if len(m) == 0 {
		return nil, false, nil
	}
	return m[0], true, nil
}

// evaluate runs step s's extracts and assertions on r (nil when no
// response arrived: every assertion fails) and sets out's assertions,
// OK and, when out has no error yet, the first failure.
func (a *attempt) evaluate(s *checks.Step, r *response, out *store.SyntheticStep) {
	var firstFailure string
	if len(s.Assert) > 0 {
		out.Assertions = make([]store.SyntheticAssertion, len(s.Assert))
	}
	if r != nil {
		var extractErr error
		for i := range s.Extract {
			if err := a.extract(&s.Extract[i], r); err != nil && extractErr == nil {
				extractErr = err
			}
		}
		for i := range s.Assert {
			res, msg := a.assert(&s.Assert[i], r)
			out.Assertions[i] = res
			if !res.OK && firstFailure == "" {
				firstFailure = msg
			}
		}
		if firstFailure == "" && extractErr != nil {
			firstFailure = extractErr.Error()
		}
	} else {
		for i := range s.Assert {
			out.Assertions[i], _ = a.assert(&s.Assert[i], nil)
		}
	}
	if out.Error == "" {
		out.Error = firstFailure
	}
	out.OK = out.Error == ""
}

// extract sets the variable of ex from r.
func (a *attempt) extract(ex *checks.Extract, r *response) error {
	switch ex.Kind {
	case checks.ExtractJSONPath:
		v, ok, err := r.first(ex.JSONPath)
		if err != nil {
			return fmt.Errorf("extract %s: %s: %w", ex.Name, ex.JSONPath, err)
		}
		if !ok {
			return fmt.Errorf("extract %s: %s matched nothing", ex.Name, ex.JSONPath)
		}
		a.vars[ex.Name] = jsonText(v)
	case checks.ExtractHeader:
		vs := r.header.Values(ex.Header)
		if len(vs) == 0 {
			return fmt.Errorf("extract %s: no header %s in the response", ex.Name, ex.Header)
		}
		a.vars[ex.Name] = vs[0]
	case checks.ExtractRegex:
		m := ex.Regex.FindSubmatch(r.body)
		if m == nil {
			return fmt.Errorf("extract %s: regex %s matched nothing", ex.Name, ex.Regex)
		}
		a.vars[ex.Name] = string(m[min(1, len(m)-1)])
	default:
		return fmt.Errorf("extract %s: unknown kind %d", ex.Name, ex.Kind)
	}
	return nil
}

// assert evaluates as on r (nil: no response) and returns its outcome and,
// when it failed, the step's error for it: "status: expected 200, got
// 503".
func (a *attempt) assert(as *checks.Assertion, r *response) (store.SyntheticAssertion, string) {
	res := store.SyntheticAssertion{Type: as.Kind.String()}
	var err error
	switch as.Kind {
	case checks.AssertStatus:
		res.Expected = strconv.Itoa(as.Status)
		if r != nil {
			res.Actual, res.OK = strconv.Itoa(r.status), r.status == as.Status
		}
	case checks.AssertStatusIn:
		res.Expected = "in " + fmt.Sprint(as.StatusIn)
		if r != nil {
			res.Actual = strconv.Itoa(r.status)
			for _, s := range as.StatusIn {
				res.OK = res.OK || r.status == s
			}
		}
	case checks.AssertLatencyBelow:
		res.Expected = "< " + formatDuration(as.LatencyBelow)
		if r != nil {
			res.Actual, res.OK = formatDuration(r.latency), r.latency < as.LatencyBelow
		}
	case checks.AssertBodyContains:
		var text string
		text, err = a.expand("text", as.Text)
		res.Expected = `"` + text + `"`
		if err == nil && r != nil {
			res.OK = bytes.Contains(r.body, []byte(text))
			res.Actual = word(res.OK, "found", "not found")
		}
	case checks.AssertJSONPathEquals, checks.AssertJSONPathExists:
		res.Target = as.JSONPath.String()
		a.assertJSON(as, r, &res)
	case checks.AssertHeader:
		res.Target = as.Header
		err = a.assertHeader(as, r, &res)
	default:
		err = fmt.Errorf("unknown assertion kind %d", as.Kind)
	}
	switch {
	case err != nil:
		res.OK, res.Actual = false, err.Error()
	case r == nil:
		res.OK, res.Actual = false, noResponse
	}
	if res.OK {
		return res, ""
	}
	what := res.Type
	if res.Target != "" {
		what += " " + res.Target
	}
	if err != nil {
		return res, what + ": " + err.Error()
	}
	return res, fmt.Sprintf("%s: expected %s, got %s", what, res.Expected, res.Actual)
}

// assertJSON evaluates a jsonpath_equals or jsonpath_exists assertion.
func (a *attempt) assertJSON(as *checks.Assertion, r *response, res *store.SyntheticAssertion) {
	want := "a match"
	if as.Kind == checks.AssertJSONPathEquals {
		want = compactJSON(as.Equals, maxValue)
	} else if !as.Exists {
		want = noMatch
	}
	res.Expected = want
	if r == nil {
		return
	}
	v, ok, err := r.first(as.JSONPath)
	switch {
	case err != nil:
		res.Actual = notJSON
	case !ok:
		res.Actual = noMatch
		res.OK = as.Kind == checks.AssertJSONPathExists && !as.Exists
	default:
		res.Actual = compactJSON(v, maxValue)
		if as.Kind == checks.AssertJSONPathEquals {
			res.OK = reflect.DeepEqual(v, asJSON(as.Equals))
		} else {
			res.OK = as.Exists
		}
	}
}

// assertHeader evaluates a header assertion.
func (a *attempt) assertHeader(as *checks.Assertion, r *response, res *store.SyntheticAssertion) error {
	var match func(string) bool
	switch as.Op {
	case checks.HeaderExists:
		res.Expected = word(as.Exists, "present", absent)
	case checks.HeaderEquals, checks.HeaderContains:
		text, err := a.expand("value", as.Text)
		if err != nil {
			return err
		}
		if as.Op == checks.HeaderEquals {
			res.Expected, match = text, func(v string) bool { return v == text }
		} else {
			res.Expected, match = "contains "+text, func(v string) bool { return strings.Contains(v, text) }
		}
	case checks.HeaderMatches:
		res.Expected, match = "matches "+as.Regex.String(), as.Regex.MatchString
	default:
		return fmt.Errorf("unknown header operator %d", as.Op)
	}
	if r == nil {
		return nil
	}
	vs := r.header.Values(as.Header)
	if len(vs) == 0 {
		res.Actual = absent
		res.OK = as.Op == checks.HeaderExists && !as.Exists
		return nil
	}
	res.Actual = clip(strings.Join(vs, ", "), maxValue)
	if as.Op == checks.HeaderExists {
		res.OK = as.Exists
		return nil
	}
	for _, v := range vs {
		res.OK = res.OK || match(v)
	}
	return nil
}

// jsonText returns v as an extract stores it: a string as it is, another
// value as compact JSON.
func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return compactJSON(v, -1)
}

// compactJSON returns v as compact JSON, cut to n bytes unless n < 0.
func compactJSON(v any, n int) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	var s string
	if enc.Encode(v) == nil {
		s = strings.TrimSuffix(b.String(), "\n")
	} else {
		s = fmt.Sprint(v)
	}
	if n >= 0 {
		s = clip(s, n)
	}
	return s
}

// word returns yes or no.
func word(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// asJSON returns v as encoding/json would decode it (float64 numbers,
// []any, map[string]any), so that values built in Go compare equal to
// decoded ones.
func asJSON(v any) any {
	switch v.(type) {
	case nil, bool, float64, string:
		return v
	}
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return v
	}
	return out
}

// formatDuration shows a duration to the millisecond, or to the
// microsecond below one millisecond: "812ms", "1.5s", "350µs".
func formatDuration(d time.Duration) string {
	if d >= time.Millisecond || d <= -time.Millisecond {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Microsecond).String()
}
