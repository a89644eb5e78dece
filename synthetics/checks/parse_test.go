package checks

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/flowscope/flowscope/yamlfile/yamlfiletest"
)

func parseFile(t *testing.T, path string) ([]Check, error) {
	t.Helper()
	return yamlfiletest.ParseFile(t, path, Parse)
}

// checkErrors returns the *Error values joined in err.
var checkErrors = yamlfiletest.Errors

var writeFile = yamlfiletest.WriteFile

// errorStrings returns the messages of the errors joined in err.
func errorStrings(t testing.TB, err error) []string {
	t.Helper()
	var out []string
	for _, e := range checkErrors(t, err) {
		out = append(out, e.Error())
	}
	return out
}

// unsetenv unsets environment variables for the test.
func unsetenv(t *testing.T, names ...string) {
	for _, name := range names {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
}

func mustTemplate(s string) Template {
	t, err := ParseTemplate(s)
	if err != nil {
		panic(err)
	}
	return t
}

func mustPath(s string) *JSONPath {
	p, err := CompileJSONPath(s)
	if err != nil {
		panic(err)
	}
	return p
}

func TestParseFull(t *testing.T) {
	t.Setenv("SHOP_API_KEY", "secret")
	const file = "testdata/valid/full.yml"
	cs, err := parseFile(t, file)
	if err != nil {
		t.Fatal(err)
	}
	want := []Check{
		{
			Name: "checkout-journey", File: file, Line: 8,
			Every: 30 * time.Second, Timeout: 20 * time.Second, Retries: 2,
			Labels: map[string]string{"team": "shop", "tier": "1"},
			Steps: []Step{
				{
					Name: "login", Line: 16,
					Request: Request{
						Method: "POST",
						URL:    mustTemplate("http://shop.local:8080/login?run=${correlation_id}"),
						Headers: []Header{
							{"Content-Type", mustTemplate("application/json")},
							{"X-Api-Key", mustTemplate("${env:SHOP_API_KEY}")},
							{"X-Request-Id", mustTemplate("${uuid}")},
						},
						Body: mustTemplate(`{"user":"synthetic","at":${timestamp},"price":"$$5"}`),
					},
					Timeout: 5 * time.Second,
					Extract: []Extract{
						{Name: "TOKEN", Kind: ExtractJSONPath, JSONPath: mustPath("$.token")},
						{Name: "SESSION", Kind: ExtractHeader, Header: "Set-Cookie"},
						{Name: "USER_ID", Kind: ExtractRegex, Regex: regexp.MustCompile(`"id":\s*"([^"]+)"`)},
					},
					Assert: []Assertion{
						{Kind: AssertStatus, Status: 200},
						{Kind: AssertLatencyBelow, LatencyBelow: 500 * time.Millisecond},
						{Kind: AssertJSONPathEquals, JSONPath: mustPath("$.ok"), Equals: true},
						{Kind: AssertJSONPathEquals, JSONPath: mustPath("$.user"), Equals: map[string]any{
							"name": "synthetic", "roles": []any{"a", 2.0}, "score": 1.5, "none": nil,
						}},
						{Kind: AssertJSONPathExists, JSONPath: mustPath("$..error"), Exists: false},
						{Kind: AssertHeader, Header: "Content-Type", Op: HeaderContains, Text: mustTemplate("json")},
					},
				},
				{
					Name: "cart", Line: 34,
					Request: Request{
						Method: "GET",
						URL:    mustTemplate("https://shop.local/cart/${USER_ID}"),
						Headers: []Header{
							{"Authorization", mustTemplate("Bearer ${TOKEN}")},
							{"Cookie", mustTemplate("${SESSION}")},
						},
					},
					ContinueOnFailure: true,
					Assert: []Assertion{
						{Kind: AssertStatusIn, StatusIn: []int{200, 201}},
						{Kind: AssertBodyContains, Text: mustTemplate("items for ${USER_ID}")},
						{Kind: AssertHeader, Header: "X-Cache", Op: HeaderEquals, Text: mustTemplate("HIT")},
						{Kind: AssertHeader, Header: "Etag", Op: HeaderMatches, Regex: regexp.MustCompile(`^"[0-9a-f]+"$`)},
						{Kind: AssertHeader, Header: "X-Debug", Op: HeaderExists, Exists: false},
						{Kind: AssertJSONPathExists, JSONPath: mustPath("$.items[-1]['sku id']"), Exists: true},
					},
				},
			},
		},
		{
			// The defaults: timeout min(DefaultTimeout, every), method GET,
			// no labels.
			Name: "health.shop:v2", File: file, Line: 48,
			Every: 5 * time.Second, Timeout: 5 * time.Second, Labels: map[string]string{},
			Steps: []Step{{Name: "ping", Line: 51, Request: Request{Method: "GET", URL: mustTemplate("http://shop.local/healthz")}}},
		},
		{
			// From an anchor merged with <<, and headers from an alias.
			Name: "catalog", File: file, Line: 53,
			Every: time.Minute, Timeout: DefaultTimeout, Labels: map[string]string{"team": "shop"},
			Steps: []Step{{
				Name: "list", Line: 56,
				Request: Request{
					Method: "GET", URL: mustTemplate("https://catalog.local/items"),
					Headers: []Header{{"Content-Type", mustTemplate("application/json")}, {"Accept", mustTemplate("application/json")}},
				},
				Assert: []Assertion{
					{Kind: AssertStatus, Status: 200},
					{Kind: AssertJSONPathEquals, JSONPath: mustPath("$.count"), Equals: 3.0},
				},
			}},
		},
	}
	if len(cs) != len(want) {
		t.Fatalf("got %d checks, want %d", len(cs), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(cs[i], want[i]) {
			t.Errorf("check %d:\n got %+v\nwant %+v", i, cs[i], want[i])
		}
	}
	checkInvariants(t, file, cs)
}

// forms is the list of assertions in the unknown-assertion messages.
const forms = "(want {status: CODE}, {status: {in: [CODE, …]}}, {latency_below: DURATION}, {body_contains: TEXT}, " +
	"{jsonpath: PATH, equals: VALUE}, {jsonpath: PATH, exists: true|false}, " +
	"{header: NAME, equals|contains|matches: TEXT} or {header: NAME, exists: true|false})"

func TestParseInvalid(t *testing.T) {
	t.Setenv("FLOWSCOPE_TEST_BASE", "http://base.local")
	t.Setenv("FLOWSCOPE_TEST_PATH", "relative")
	unsetenv(t, "FLOWSCOPE_TEST_UNSET_VAR", "X", "nope")
	cases := map[string][]string{
		"steps.yml": {
			"4: checks[0].steps: 11 steps; a check has at most 10",
			"16: checks[1].steps: missing: want a list of 1 to 10 steps",
			"20: checks[2].steps: empty: want 1 to 10 steps",
			"23: checks[3].steps: want a list of steps, not a mapping",
			`26: checks[4].steps[0]: want a step: a mapping with name: and request:, not "just a string"`,
		},
		"assert.yml": {
			`8: checks[0].steps[0].assert[0].status_code: unknown assertion: did you mean "status"? ` + forms,
			`9: checks[0].steps[0].assert[1].body_matches: unknown assertion: did you mean "body_contains"? ` + forms,
			"10: checks[0].steps[0].assert[2].status: 99 is out of range: want an HTTP status code (100 to 599)",
			`11: checks[0].steps[0].assert[3].status: want an HTTP status code (100 to 599), not "2xx"`,
			"12: checks[0].steps[0].assert[4].status: want a status code, or {in: [CODE, …]} for several",
			"13: checks[0].steps[0].assert[5].status.in: empty: want at least one status code",
			"14: checks[0].steps[0].assert[6].status.in[1]: 600 is out of range: want an HTTP status code (100 to 599)",
			"15: checks[0].steps[0].assert[7]: a jsonpath assertion needs equals: VALUE or exists: true|false",
			"16: checks[0].steps[0].assert[8].latency_below: status: and latency_below: in one assertion; write each as its own list item",
			"17: checks[0].steps[0].assert[9].equals: equals: does not go with status: " + forms,
			`18: checks[0].steps[0].assert[10].latency_below: "0s" is not more than 0`,
			"19: checks[0].steps[0].assert[11].body_contains: empty: want the text the body must contain",
			"20: checks[0].steps[0].assert[12].contains: empty: want the text the header must contain",
			"21: checks[0].steps[0].assert[13]: equals: needs jsonpath: or header: " + forms,
			"22: checks[0].steps[0].assert[14]: empty assertion " + forms,
			"23: checks[0].steps[0].assert[15]: an assertion is a mapping such as {status: 200}, not the number 200",
			"24: checks[0].steps[0].assert[16].exists: both equals: (line 24) and exists: given; want only one",
			"25: checks[0].steps[0].assert[17].header: \"bad header\" is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)",
			`25: checks[0].steps[0].assert[17].exists: want true or false, not "yes"`,
			"26: checks[0].steps[0].assert[18]: a header assertion needs equals:, contains:, matches: or exists:",
			"27: checks[0].steps[0].assert[19].equals: .nan is not a JSON number",
			`28: checks[0].steps[0].assert[20].latency: unknown key in a status assertion: did you mean "latency_below"?`,
		},
		"jsonpath.yml": {
			`8: checks[0].steps[0].extract[0].jsonpath: JSONPath "token" must start with $`,
			`9: checks[0].steps[0].extract[1].jsonpath: JSONPath "$.items[?(@.id)]" at offset 7: [?(@.id)]: filters, slices and unions are not supported (use a member, an index or *)`,
			`11: checks[0].steps[0].assert[0].jsonpath: JSONPath "$.a." at offset 3: a member name must follow "."`,
			`12: checks[0].steps[0].assert[1].jsonpath: JSONPath "$['a" at offset 1: unclosed quote in ['…]`,
		},
		"regex.yml": {
			"8: checks[0].steps[0].extract[0].regex: bad regular expression: missing closing ): `\"id\": (\\d+`",
			"9: checks[0].steps[0].extract[1].regex: empty regular expression",
			"11: checks[0].steps[0].assert[0].matches: bad regular expression: missing closing ]: `[a-z`",
			"12: checks[0].steps[0].assert[1].matches: bad regular expression: invalid nested repetition operator: `**`",
		},
		"vars.yml": {
			`7: checks[0].steps[0].request.url: undefined variable ${TOKEN}: step "second" (steps[1]) extracts it, after this step; a step uses the variables of the earlier steps`,
			"8: checks[0].steps[0].request.headers.authorization: undefined variable ${SESSION}: this step extracts it, for the steps after it; a step uses the variables of the earlier steps",
			"12: checks[0].steps[1].request.url: undefined variable ${SESION}: did you mean ${SESSION}?",
			"13: checks[0].steps[1].request.body: undefined variable ${UUID}: did you mean ${uuid}?",
			"13: checks[0].steps[1].request.body: undefined variable ${nope}; the earlier steps extract ${SESSION}",
			"15: checks[0].steps[1].assert[1].equals: environment variable FLOWSCOPE_TEST_UNSET_VAR is not set (${env:FLOWSCOPE_TEST_UNSET_VAR} is read when the checks are loaded, and at each run)",
			"15: checks[0].steps[1].assert[0].body_contains: undefined variable ${TOKEN}: this step extracts it, for the steps after it; a step uses the variables of the earlier steps",
			"17: checks[0].steps[2].request.url: bad variable ${bad-name}: a name is letters, digits and _ (not starting with a digit, at most 128), or one of uuid, timestamp, correlation_id, env:NAME",
			`22: checks[1].steps[0].request.body: unclosed variable "${unclosed" (write $$ for a literal $)`,
			"22: checks[1].steps[0].request.url: undefined variable ${X}: no earlier step extracts variables (extract:); the built-in variables are ${uuid}, ${timestamp}, ${correlation_id} and ${env:NAME}",
		},
		"durations.yml": {
			"3: checks[0].every: 500ms is shorter than the minimum 1s",
			"7: checks[1].timeout: 1m is longer than every: 30s; a run must end before the next one is due",
			"9: checks[2].every: missing: want the schedule, at least 1s (e.g. every: 30s)",
			`12: checks[3].every: invalid duration "30": missing unit; write e.g. 30s`,
			`13: checks[3].timeout: "0s" is not more than 0`,
			"14: checks[3].retries: 6 is out of range: want a whole number from 0 to 5",
			"19: checks[4].steps[0].timeout: 6s is longer than the check's timeout 5s",
			`20: checks[4].steps[1].timeout: "-1s" is not more than 0`,
			`22: checks[5].every: invalid duration "5 minutes": unknown unit " minutes"; want ns, us, ms, s, m, h, d or w, e.g. 5m or 1h30m`,
			`23: checks[5].retries: want a whole number from 0 to 5, not "two"`,
			`24: checks[5].steps[0].continue_on_failure: want true or false, not "yes"`,
		},
		"names.yml": {
			`6: checks[0].steps[1].name: duplicate step name "step" (first at line 5); step names are unique in a check`,
			`7: checks[1].name: duplicate check name "same" (first defined at testdata/invalid/names.yml:2)`,
			`10: checks[2].name: name "a/b" has the character '/': a check name is letters, digits, '.', '_', '-' and ':' (it names the flow-graph node synthetic:NAME and is a segment of URL paths)`,
			`13: checks[3].name: name "my check" has the character ' ': a check name is letters, digits, '.', '_', '-' and ':' (it names the flow-graph node synthetic:NAME and is a segment of URL paths)`,
			`15: checks[3].steps[0].name: name " s" begins or ends with white space`,
			"16: checks[4].name: missing: every check needs a name",
			"17: checks[4].steps[0].name: missing: every step needs a name",
			`18: checks[5].name: name ".." is not allowed: the name is a segment of URL paths`,
			"21: checks[6].name: name is 131 bytes long; at most 128",
		},
		"request.yml": {
			`6: checks[0].steps[0].request.url: missing: want the URL to request, e.g. url: "https://HOST/PATH"`,
			`8: checks[0].steps[1].request.url: URL scheme "ftp" is not supported: want http or https`,
			`10: checks[0].steps[2].request.url: URL "/login" is not absolute: want http://HOST/… or https://HOST/…`,
			`12: checks[0].steps[3].request.url: URL "http:///path" has no host`,
			`14: checks[0].steps[4].request.url: URL "${env:FLOWSCOPE_TEST_PATH}/path" is not absolute: want http://HOST/… or https://HOST/… (checked with the environment's values for ${env:…} and "x" for the other variables: write the scheme and the host out, or take them from the environment)`,
			`16: checks[0].steps[5].request.url: bad URL "http://a b.local/": invalid character " " in host name`,
			`18: checks[0].steps[6].request.method: "GET /" is not an HTTP method (a token such as GET or POST)`,
			"24: checks[0].steps[7].request.headers.Content-Type: header Content-Type given twice (first at line 23)",
			"25: checks[0].steps[7].request.headers.bad header: \"bad header\" is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)",
			"26: checks[0].steps[7].request.headers.x-list: want a string, not a list",
			"27: checks[0].steps[7].request.headers.x-crlf: a header value cannot contain a line break or NUL",
			`29: checks[0].steps[8].request.body: want the body as a string, not a mapping; quote JSON: body: '{"user": "synthetic"}'`,
			`33: checks[1].steps[0].request: missing: want the request, e.g. request: {method: GET, url: "https://HOST/PATH"}`,
			`35: checks[1].steps[1].request: want a request: a mapping such as {method: GET, url: "https://HOST/PATH"}, not a list`,
		},
		"keys.yml": {
			`1: check: unknown key: did you mean "checks"?`,
			`4: checks[0].evry: unknown key: did you mean "every"?`,
			`6: checks[0].interval: unknown key: did you mean "every"?`,
			"9: checks[0].steps[0].url: unknown key: it belongs in request: (request: {url: …})",
			`10: checks[0].steps[0].request.header: unknown key: did you mean "headers"?`,
			`11: checks[0].steps[0].extract[0].jsonpth: unknown key: did you mean "jsonpath"?`,
			"11: checks[0].steps[0].extract[0]: missing source: want one of jsonpath:, header: or regex:",
			`12: checks[0].steps[0].asserts: unknown key: did you mean "assert"?`,
			`13: checks[0].steps[0].continue: unknown key: did you mean "continue_on_failure"?`,
		},
		"extract.yml": {
			"8: checks[0].steps[0].extract[0]: missing source: want one of jsonpath:, header: or regex:",
			"9: checks[0].steps[0].extract[1].header: both jsonpath: (line 9) and header: given; want only one",
			`10: checks[0].steps[0].extract[2].name: bad variable name "1x": use letters, digits and _, not starting with a digit`,
			"11: checks[0].steps[0].extract[3].name: uuid is a built-in variable; choose another name",
			"13: checks[0].steps[0].extract[5].name: duplicate variable E (first at line 12)",
			"14: checks[0].steps[0].extract[6].header: \"x:y\" is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)",
			`15: checks[0].steps[0].extract[7]: want an extract: {name: VAR, jsonpath: PATH}, {name: VAR, header: NAME} or {name: VAR, regex: RE}, not "just-a-name"`,
		},
		"labels.yml": {
			`6: checks[0].labels.bad-name: label name "bad-name" is not valid: want [a-zA-Z_][a-zA-Z0-9_]*`,
			"7: checks[0].labels.__reserved: label names beginning with __ are reserved",
			"8: checks[0].labels.nested: want a string, not a mapping",
			"10: checks[0].labels.dup: duplicate key (first at line 9)",
		},
		"syntax.yml":  {"4: YAML syntax error: did not find expected ',' or ']'"},
		"empty.yml":   {"empty file: want a `checks:` list"},
		"twodocs.yml": {"2: a second YAML document; a checks file holds one"},
		"notlist.yml": {"2: checks: must be a list of checks, not a mapping"},
		"toplist.yml": {"1: want a mapping with a `checks:` list, not a list"},
	}
	files, err := filepath.Glob("testdata/invalid/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := cases[filepath.Base(f)]; !ok {
			t.Errorf("%s has no expected errors", f)
		}
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", "invalid", name)
			cs, err := parseFile(t, path)
			if err == nil {
				t.Fatalf("no error; checks %+v", cs)
			}
			if cs != nil {
				t.Errorf("checks returned with an error: %+v", cs)
			}
			for i, w := range want {
				sep := ":"
				if !strings.ContainsAny(w[:1], "0123456789") {
					sep = ": "
				}
				want[i] = path + sep + w
			}
			got := errorStrings(t, err)
			for i := 0; i < max(len(got), len(want)); i++ {
				switch {
				case i >= len(got):
					t.Errorf("missing error %d: %s", i, want[i])
				case i >= len(want):
					t.Errorf("unexpected error %d: %s", i, got[i])
				case got[i] != want[i]:
					t.Errorf("error %d:\n got %s\nwant %s", i, got[i], want[i])
				}
			}
			for _, e := range checkErrors(t, err) {
				if e.File != path {
					t.Errorf("error %v names the file %q", e, e.File)
				}
			}
		})
	}
}

// check is a valid check file with the steps given as YAML flow items.
func check(steps ...string) string {
	return "checks:\n  - name: c\n    every: 1m\n    steps:\n" + "      - " + strings.Join(steps, "\n      - ") + "\n"
}

func TestParseEdgeCases(t *testing.T) {
	t.Setenv("FLOWSCOPE_TEST_BASE", "http://base.local")
	ok := []struct {
		name, yaml string
		n          int
	}{
		{"empty list", "checks: []\n", 0},
		{"null list", "checks:\n# - name: commented out\n", 0},
		{"extension key", "x-common: &c {team: shop}\nchecks: []\n", 0},
		{"number names", "checks: [{name: 42, every: 1s, steps: [{name: 1, request: {url: 'http://a'}}]}]\n", 1},
		{"prometheus durations", "checks: [{name: c, every: 1d, timeout: 1m30s, steps: [{name: s, timeout: 1m, request: {url: 'http://a'}}]}]\n", 1},
		{"empty lists and maps", "checks: [{name: c, every: 1s, labels: , steps: [{name: s, request: {url: 'http://a', headers: }, extract: , assert: }]}]\n", 1},
		{"ipv6 host", check(`{name: s, request: {url: "http://[::1]:8080/x"}}`), 1},
		{"dollars", check(`{name: s, request: {url: "http://a/$x/$$/${uuid}$", body: "$"}}`), 1},
		{"variable in host", check(`{name: a, request: {url: "http://a"}, extract: [{name: H, header: x-host}]}`, `{name: b, request: {url: "https://${H}:8443/"}}`), 1},
		{"env in path", check(`{name: s, request: {url: "http://a/${env:FLOWSCOPE_TEST_BASE}"}}`), 1},
		{"base URL from the environment", check(`{name: s, request: {url: "${env:FLOWSCOPE_TEST_BASE}/path"}}`), 1},
		{"custom method", check(`{name: s, request: {method: purge, url: "http://a"}}`), 1},
		{"empty header value", check(`{name: s, request: {url: "http://a", headers: {x-empty: ""}}, assert: [{header: x-empty, equals: ""}]}`), 1},
		{"variable redefined", check(
			`{name: a, request: {url: "http://a"}, extract: [{name: T, header: x-t}]}`,
			`{name: b, request: {url: "http://a/${T}"}, extract: [{name: T, jsonpath: "$.t"}]}`,
			`{name: c, request: {url: "http://a/${T}"}}`), 1},
		{"merge into step and request", "x-req: &req {method: POST, url: 'http://a'}\nx-step: &step {timeout: 1s, request: *req}\n" +
			"checks: [{name: c, every: 1s, steps: [{<<: *step, name: s}, {name: t, request: {<<: *req, body: x}}]}]\n", 1},
		{"status strings as numbers", check(`{name: s, request: {url: "http://a"}, assert: [{status: 0x12c}, {status: {in: [1_00]}}]}`), 1},
	}
	for _, c := range ok {
		cs, err := Parse("t.yml", []byte(c.yaml))
		if err != nil || len(cs) != c.n {
			t.Errorf("%s: %d checks, %v; want %d", c.name, len(cs), err, c.n)
		}
		checkInvariants(t, "t.yml", cs)
	}

	bad := []struct {
		name, yaml string
		want       []string
	}{
		{"scalar document", "just text\n", []string{"t.yml:1: want a mapping with a `checks:` list, not \"just text\""}},
		{"only comments", "# nothing\n", []string{"t.yml: empty file: want a `checks:` list"}},
		{"unknown top key", "checks: []\nchecks_: []\n", []string{`t.yml:2: checks_: unknown key: did you mean "checks"?`}},
		{"rules file", "rules: []\n", []string{
			"t.yml:1: rules: unknown key (the file holds `checks:`, and x-… keys for anchors)",
			"t.yml:1: checks: missing: want `checks:` with a list of checks",
		}},
		{"config section", "synthetics: {checks: a.yml}\nchecks: []\n", []string{
			"t.yml:1: synthetics: unknown key: the file holds `checks:` directly (synthetics.checks in the configuration is the path of this file)",
		}},
		{"checks scalar", "checks: 5\n", []string{"t.yml:1: checks: must be a list of checks, not the number 5"}},
		{"check scalar", "checks: [5]\n", []string{"t.yml:1: checks[0]: want a check: a mapping with name:, every: and steps:, not the number 5"}},
		{"unknown check key", "checks: [{name: c, every: 1s, steps: [{name: s, request: {url: 'http://a'}}], owner: me}]\n", []string{
			"t.yml:1: checks[0].owner: unknown key (want name, every, timeout, retries, labels or steps)",
		}},
		{"request at the check", "checks: [{name: c, every: 1s, url: 'http://a', steps: [{name: s, request: {url: 'http://a'}}]}]\n", []string{
			"t.yml:1: checks[0].url: unknown key: requests belong to steps (steps: [{name: …, request: {url: …}}])",
		}},
		{"default timeout over the step's", "checks: [{name: c, every: 2s, steps: [{name: s, timeout: 3s, request: {url: 'http://a'}}]}]\n", []string{
			"t.yml:1: checks[0].steps[0].timeout: 3s is longer than the check's timeout 2s",
		}},
		{"equals on a header without a value", check(`{name: s, request: {url: "http://a"}, assert: [{header: x, equals: }]}`), []string{
			"t.yml:5: checks[0].steps[0].assert[0].equals: has no value; want a string",
		}},
		{"non-string key", check(`{name: s, request: {url: "http://a"}, [a]: 1}`), []string{
			"t.yml:5: checks[0].steps[0]: keys must be strings, not a list",
		}},
		{"bad merge", "checks: [{<<: 5, name: c}]\n", []string{
			"t.yml:1: checks[0]: a merge key (<<) takes a mapping or a list of mappings, not the number 5",
			"t.yml:1: checks[0].every: missing: want the schedule, at least 1s (e.g. every: 30s)",
			"t.yml:1: checks[0].steps: missing: want a list of 1 to 10 steps",
		}},
		{"equals too deep", check(`{name: s, request: {url: "http://a"}, assert: [{jsonpath: $.a, equals: ` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}]}`), []string{
			"t.yml:5: checks[0].steps[0].assert[0].equals: value nested more than 32 deep",
		}},
		{"second problem in a list", "checks:\n  - name: a\n    every: 1s\n    steps: [{name: s, request: {url: 'http://a'}}]\n  - name: b\n", []string{
			"t.yml:5: checks[1].every: missing: want the schedule, at least 1s (e.g. every: 30s)",
			"t.yml:5: checks[1].steps: missing: want a list of 1 to 10 steps",
		}},
	}
	for _, c := range bad {
		cs, err := Parse("t.yml", []byte(c.yaml))
		if err == nil {
			t.Errorf("%s: no error; checks %+v", c.name, cs)
			continue
		}
		if got := errorStrings(t, err); !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

func TestEquals(t *testing.T) {
	cases := []struct{ yaml, json string }{
		{"1", "1"},
		{"-2.5", "-2.5"},
		{"0x10", "16"},
		{"1_000", "1000"},
		{"1e3", "1000"},
		{"99999999999999999999", "1e20"},
		{"true", "true"},
		{"False", "false"},
		{"null", "null"},
		{"~", "null"},
		{"", "null"},
		{`"1"`, `"1"`},
		{"'true'", `"true"`},
		{"abc", `"abc"`},
		{"2001-12-14", `"2001-12-14"`},
		{"[]", "[]"},
		{"{}", "{}"},
		{"[1, a, {b: [true, null]}]", `[1, "a", {"b": [true, null]}]`},
		{"{1: x, y: {z: 2.5}}", `{"1": "x", "y": {"z": 2.5}}`},
	}
	for _, c := range cases {
		cs, err := Parse("t.yml", []byte(check(`{name: s, request: {url: "http://a"}, assert: [{jsonpath: $.a, equals: `+c.yaml+`}]}`)))
		if err != nil {
			t.Errorf("%s: %v", c.yaml, err)
			continue
		}
		var want any
		if err := json.Unmarshal([]byte(c.json), &want); err != nil {
			t.Fatal(err)
		}
		if got := cs[0].Steps[0].Assert[0].Equals; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v, want %#v", c.yaml, got, want)
		}
	}
	for _, bad := range []string{".nan", ".inf", "-.Inf"} {
		_, err := Parse("t.yml", []byte(check(`{name: s, request: {url: "http://a"}, assert: [{jsonpath: $.a, equals: `+bad+`}]}`)))
		if err == nil || !strings.Contains(err.Error(), "is not a JSON number") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestLimits(t *testing.T) {
	big := make([]byte, MaxFileSize+1)
	if _, err := Parse("big.yml", big); err == nil || err.Error() != "big.yml: file larger than 4194304 bytes (4 MiB)" {
		t.Errorf("big file: %v", err)
	}
	if cs, err := Parse("many.yml", manyChecks("c", MaxChecks)); err != nil || len(cs) != MaxChecks {
		t.Errorf("%d checks: %d checks, %v", MaxChecks, len(cs), err)
	}
	if _, err := Parse("many.yml", manyChecks("c", MaxChecks+1)); err == nil || err.Error() != "many.yml:2: checks: 1001 checks; a check set holds at most 1000" {
		t.Errorf("%d checks: %v", MaxChecks+1, err)
	}
	// Messages quote long values shortened, at character boundaries.
	long := strings.Repeat("é", 5000)
	_, err := Parse("long.yml", []byte("checks:\n  - name: "+long+"\n    every: "+long+"\n    "+long+": 1\n    steps: [{name: s, request: {url: '"+long+"', method: '"+long+"'}}]\n"))
	for _, e := range checkErrors(t, err) {
		if len(e.Error()) > 600 || !utf8.ValidString(e.Error()) {
			t.Errorf("%d bytes: %.100q…", len(e.Error()), e)
		}
	}
	// Errors stop being listed at maxErrors, and the rest are counted.
	var b strings.Builder
	b.WriteString("checks:\n")
	for range 700 {
		b.WriteString("  - {}\n") // three errors each
	}
	errs := checkErrors(t, func() error { _, err := Parse("bad.yml", []byte(b.String())); return err }())
	if len(errs) != maxErrors+1 || errs[maxErrors].Msg != "1100 more errors not shown" {
		t.Errorf("%d errors, last %v", len(errs), errs[len(errs)-1])
	}
	// Aliases and merge keys cannot make a small file expensive.
	levels := func(first, format string) string {
		var b strings.Builder
		b.WriteString("x-0: &a0 " + first + "\n")
		for i := 1; i <= 8; i++ {
			refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 10), ", ")
			fmt.Fprintf(&b, "x-%d: &a%d "+format+"\n", i, i, refs)
		}
		return b.String()
	}
	step := "{name: s, request: {url: 'http://a'}, assert: %s}"
	for name, text := range map[string]string{
		"equals": levels("{status: 200}", "[%s]") +
			"checks: [{name: c, every: 1s, steps: [" + fmt.Sprintf(step, "[{jsonpath: $.a, equals: *a8}]") + "]}]\n",
		"merge keys": levels("{a: 1}", "{<<: [%s]}") +
			"checks: [{name: c, every: 1s, labels: *a8, steps: [" + fmt.Sprintf(step, "[]") + "]}]\n",
		"checks": "x-a: &a [" + strings.Repeat("{status: 200}, ", 2000) + "]\n" +
			"x-c: &c {name: c, every: 1s, steps: [" + strings.Repeat(fmt.Sprintf(step, "*a")+", ", 10) + "]}\n" +
			"checks: [" + strings.Repeat("*c, ", 1000) + "]\n",
	} {
		start := time.Now()
		_, err = Parse("bomb.yml", []byte(text))
		if err == nil || !strings.Contains(err.Error(), "too many YAML values (more than 524288, counting again those that aliases and merge keys repeat)") {
			t.Errorf("%s: %.300v", name, err)
		}
		// A safety bound only (it takes well under a second on a quiet
		// machine; the race detector and a loaded CI make it slower): an
		// alias bomb that were expanded would take hours.
		if d := time.Since(start); d > time.Minute {
			t.Errorf("%s took %v", name, d)
		}
	}
}

// manyChecks returns a checks file with n checks named prefix0, prefix1, ….
func manyChecks(prefix string, n int) []byte {
	var b strings.Builder
	b.WriteString("checks:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: %s%d, every: 1m, steps: [{name: s, request: {url: 'http://a.local/'}}]}\n", prefix, i)
	}
	return []byte(b.String())
}

func TestLoadDirectory(t *testing.T) {
	cs, err := Load("testdata/dir")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs {
		got = append(got, fmt.Sprintf("%s %s:%d", c.Name, c.File, c.Line))
	}
	want := []string{
		"a1 testdata/dir/a.yml:2",
		"a2 testdata/dir/a.yml:5",
		"b1 testdata/dir/b.yaml:3",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	checkInvariants(t, "", cs)

	// One file.
	cs, err = Load("testdata/dir/b.yaml")
	if err != nil || len(cs) != 1 || cs[0].Name != "b1" {
		t.Errorf("one file: %v, %v", cs, err)
	}
	// Any name when the path is a file.
	dir := t.TempDir()
	writeFile(t, dir, "checks.conf", "checks: []\n")
	if cs, err := Load(filepath.Join(dir, "checks.conf")); err != nil || len(cs) != 0 {
		t.Errorf("checks.conf: %v, %v", cs, err)
	}
}

func TestLoadDuplicateAcrossFiles(t *testing.T) {
	_, err := Load("testdata/dupdir")
	got := errorStrings(t, err)
	want := []string{`testdata/dupdir/b.yml:5: checks[1].name: duplicate check name "shared" (also defined at testdata/dupdir/a.yml:2); names must be unique across the checks files`}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLoadErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := Load(missing); err == nil || err.Error() != missing+": no such file or directory" {
		t.Errorf("missing path: %v", err)
	}

	empty := t.TempDir()
	if _, err := Load(empty); err == nil || err.Error() != empty+": no checks files (*.yml or *.yaml) in this directory" {
		t.Errorf("empty directory: %v", err)
	}

	emptyChecks := t.TempDir()
	writeFile(t, emptyChecks, "none.yml", "checks: []\n")
	if cs, err := Load(emptyChecks); err != nil || len(cs) != 0 {
		t.Errorf("checks: []: %v, %v", cs, err)
	}

	// Errors of every file are reported, each naming its file.
	bad := t.TempDir()
	writeFile(t, bad, "a.yml", "checks:\n  - name: a\n")
	writeFile(t, bad, "b.yaml", "checks: {}\n")
	writeFile(t, bad, "c.yml", string(manyChecks("c", 1)))
	_, err := Load(bad)
	var files []string
	for _, e := range checkErrors(t, err) {
		files = append(files, filepath.Base(e.File))
	}
	if want := []string{"a.yml", "a.yml", "b.yaml"}; !slices.Equal(files, want) {
		t.Errorf("errors in %v, want %v:\n%v", files, want, err)
	}

	large := t.TempDir()
	writeFile(t, large, "big.yml", "checks: []\n"+strings.Repeat("#", MaxFileSize))
	if _, err := Load(large); err == nil || err.Error() != filepath.Join(large, "big.yml")+": file larger than 4194304 bytes (4 MiB)" {
		t.Errorf("large file: %v", err)
	}

	// MaxChecks counts the whole set.
	many := t.TempDir()
	writeFile(t, many, "a.yml", string(manyChecks("a", MaxChecks/2)))
	writeFile(t, many, "b.yml", string(manyChecks("b", MaxChecks/2+1)))
	if _, err := Load(many); err == nil || err.Error() != many+": 1001 checks in all; a check set holds at most 1000" {
		t.Errorf("too many checks: %v", err)
	}
}

func TestErrorsAs(t *testing.T) {
	// The problems are joined (errors.Join), and errors.As finds the
	// first.
	_, err := Parse("f.yml", []byte("checks:\n  - name: A\n"))
	var ce *Error
	if !errors.As(err, &ce) || ce.File != "f.yml" || ce.Line != 2 || len(checkErrors(t, err)) != 2 {
		t.Errorf("errors.As: %v", err)
	}
}

// checkInvariants checks what every accepted check satisfies.
func checkInvariants(t testing.TB, file string, cs []Check) {
	t.Helper()
	names := map[string]bool{}
	for i, c := range cs {
		fail := func(format string, args ...any) {
			t.Helper()
			t.Errorf("check %d %q: %s", i, c.Name, fmt.Sprintf(format, args...))
		}
		if names[c.Name] {
			fail("duplicate name")
		}
		names[c.Name] = true
		if msg := checkName(c.Name); msg != "" {
			fail("bad name: %s", msg)
		}
		if (file != "" && c.File != file) || c.Line < 1 {
			fail("location %s:%d", c.File, c.Line)
		}
		if c.Every < MinEvery || c.Timeout <= 0 || c.Timeout > c.Every || c.Retries < 0 || c.Retries > MaxRetries {
			fail("every %v timeout %v retries %d", c.Every, c.Timeout, c.Retries)
		}
		if c.Labels == nil {
			fail("nil labels")
		}
		for k := range c.Labels {
			if !labelNameRE.MatchString(k) || strings.HasPrefix(k, "__") {
				fail("label %q", k)
			}
		}
		if len(c.Steps) < 1 || len(c.Steps) > MaxSteps {
			fail("%d steps", len(c.Steps))
		}
		stepNames := map[string]bool{}
		var defined []string
		for j, st := range c.Steps {
			sfail := func(format string, args ...any) {
				t.Helper()
				fail("step %d %q: %s", j, st.Name, fmt.Sprintf(format, args...))
			}
			if st.Name == "" || stepNames[st.Name] || checkStepName(st.Name) != "" || st.Line < 1 {
				sfail("bad or duplicate name, line %d", st.Line)
			}
			stepNames[st.Name] = true
			if st.Timeout < 0 || st.Timeout > c.Timeout {
				sfail("timeout %v", st.Timeout)
			}
			r := st.Request
			if !isToken(r.Method) || strings.ToUpper(r.Method) != r.Method {
				sfail("method %q", r.Method)
			}
			if msg := checkURL(r.URL); msg != "" || r.URL.IsZero() {
				sfail("url: %s", msg)
			}
			templates := []Template{r.URL, r.Body}
			for _, h := range r.Headers {
				if h.Name != http.CanonicalHeaderKey(h.Name) || !isToken(h.Name) {
					sfail("header %q", h.Name)
				}
				templates = append(templates, h.Value)
			}
			for _, a := range st.Assert {
				if !validAssertion(a) {
					sfail("assertion %+v", a)
				}
				templates = append(templates, a.Text)
			}
			for _, tm := range templates {
				for _, p := range tm.Parts {
					switch p.Kind {
					case VarExtract:
						if !slices.Contains(defined, p.Text) {
							sfail("%s is not defined by an earlier step", p)
						}
					case VarEnv:
						if _, ok := os.LookupEnv(p.Text); !ok {
							sfail("%s is not set", p)
						}
					}
				}
			}
			for _, ex := range st.Extract {
				ok := identifier(ex.Name) && !slices.Contains(builtinVars, ex.Name)
				switch ex.Kind {
				case ExtractJSONPath:
					ok = ok && ex.JSONPath != nil && ex.Header == "" && ex.Regex == nil
				case ExtractHeader:
					ok = ok && ex.JSONPath == nil && isToken(ex.Header) && ex.Regex == nil
				case ExtractRegex:
					ok = ok && ex.JSONPath == nil && ex.Header == "" && ex.Regex != nil
				default:
					ok = false
				}
				if !ok {
					sfail("extract %+v", ex)
				}
				defined = append(defined, ex.Name)
			}
		}
	}
}

// validAssertion reports whether a's fields fit its kind.
func validAssertion(a Assertion) bool {
	code := func(c int) bool { return c >= 100 && c <= 599 }
	switch a.Kind {
	case AssertStatus:
		return code(a.Status)
	case AssertStatusIn:
		return len(a.StatusIn) > 0 && !slices.ContainsFunc(a.StatusIn, func(c int) bool { return !code(c) })
	case AssertLatencyBelow:
		return a.LatencyBelow > 0
	case AssertBodyContains:
		return a.Text.Raw != ""
	case AssertJSONPathEquals, AssertJSONPathExists:
		return a.JSONPath != nil
	case AssertHeader:
		if !isToken(a.Header) || a.Header != http.CanonicalHeaderKey(a.Header) {
			return false
		}
		switch a.Op {
		case HeaderExists, HeaderEquals:
			return true
		case HeaderContains:
			return a.Text.Raw != ""
		case HeaderMatches:
			return a.Regex != nil
		}
	}
	return false
}
