package synthetics

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/synthetics/checks"
)

func TestMasker(t *testing.T) {
	m := newMasker([]string{"", "abc", "abc def/+", "x\xffy"})
	for _, tc := range []struct{ in, want string }{
		{"none here", "none here"},
		{"k=abc&l=abcabc", "k=****&l=********"},
		{"abc def/+ and abc", "**** and ****"},
		{"q=abc+def%2F%2B p=/abc%20def%2F+", "q=**** p=/****"},
		{"x\xffy and \xfe", "**** and \uFFFD"},
	} {
		if got := m.clean(tc.in); got != tc.want {
			t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := (masker{}).clean("abc\xff"); got != "abc\uFFFD" {
		t.Errorf("zero masker: %q", got)
	}
	if got := clip(strings.Repeat("é", 600), 1024); len(got) > 1024 || !strings.HasSuffix(got, "…") {
		t.Errorf("clip: %d bytes %q…", len(got), got[:10])
	}
}

// TestSecrets: values of ${env:…} reach the target but nothing stored,
// written or logged.
func TestSecrets(t *testing.T) {
	const secret = "s3cr3t-hunter2"
	t.Setenv("SYNTHETICS_TEST_SECRET", secret)
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		w.Header().Set("X-Echo", r.Header.Get("X-Api-Key"))
		io.WriteString(w, "you sent "+r.URL.Query().Get("key"))
	}))
	defer srv.Close()
	const env = "${env:SYNTHETICS_TEST_SECRET}"
	c := check("secret", time.Minute,
		mkStep("login", "POST", srv.URL+"/login?key="+env, header("X-Api-Key", env), body(`{"key":"`+env+`"}`),
			status(201), bodyContains(env), assert(checks.Assertion{Kind: checks.AssertHeader, Header: "X-Echo", Op: checks.HeaderEquals, Text: tmpl(env)}),
			extractRegex("ECHO", `sent (\S+)`), continueOnFailure()),
		mkStep("bad url", "GET", "ftp://"+srv.Listener.Addr().String()+"/"+env, continueOnFailure()),
		mkStep("echo", "GET", srv.URL+"/echo/${ECHO}", status(404)),
		mkStep("skipped", "GET", srv.URL+"/later?key="+env+"&t=${ECHO}"),
	)
	h := newHarness(t, []checks.Check{c}, nil)
	run, err := h.p.RunNow(context.Background(), "secret")
	if err != nil {
		t.Fatal(err)
	}
	if run.OK || len(run.Steps) != 4 || !run.Steps[3].Skipped || run.Steps[2].Status != 200 {
		t.Fatalf("run %+v", run)
	}
	if u := run.Steps[0].URL; u != srv.URL+"/login?key=****" {
		t.Errorf("login URL %q", u)
	}
	if u := run.Steps[3].URL; u != srv.URL+"/later?key=****&t=****" {
		t.Errorf("skipped URL %q", u)
	}
	if b := run.Steps[0].Body; b != "you sent ****" {
		t.Errorf("login body %q", b)
	}
	if a := run.Steps[0].Assertions; len(a) != 3 || a[1].Expected != `"****"` || !a[1].OK || a[2].Expected != "****" || a[2].Actual != "****" || !a[2].OK {
		t.Errorf("login assertions %+v", a)
	}
	if e := run.Steps[1].Error; !strings.Contains(e, "****") {
		t.Errorf("bad url error %q", e)
	}
	stored, _ := json.Marshal(h.runs.all())
	for what, s := range map[string]string{"stored run": string(stored), "spans": string(h.writer.raw()), "logs": h.logs.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("%s contain the secret: %s", what, s)
		}
	}
	if !strings.Contains(h.logs.String(), "synthetic run failed") {
		t.Errorf("logs do not show the failure: %s", h.logs.String())
	}
	reqs := rec.all()
	if len(reqs) != 2 || reqs[0].path != "/login?key="+secret || reqs[0].header.Get("X-Api-Key") != secret || reqs[0].body != `{"key":"`+secret+`"}` {
		t.Errorf("the server received %+v", reqs)
	}
}
