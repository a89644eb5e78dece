package uitest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/flowscope/flowscope/internal/config"
)

// zipkinSpan returns one Zipkin v2 span of service, starting a second ago,
// in a fresh trace.
func zipkinSpan(service string) map[string]any {
	tid, ids := newIDs(1)
	return map[string]any{
		"traceId": hex.EncodeToString(tid), "id": hex.EncodeToString(ids[0]), "name": "GET /" + service, "kind": "SERVER",
		"localEndpoint": map[string]any{"serviceName": service},
		"timestamp":     time.Now().Add(-time.Second).UnixMicro(), "duration": 1500,
	}
}

// zipkinDoc is a Zipkin v2 JSON document of one span of service: a file
// the import endpoint takes, and a body the Zipkin receiver takes.
func zipkinDoc(service string) []byte {
	b, err := json.Marshal([]map[string]any{zipkinSpan(service)})
	if err != nil {
		panic(err)
	}
	return b
}

// serviceNames lists the services with spans in the last hour, through
// the API (with the read token when one is configured).
func (s *server) serviceNames(t *testing.T) []string {
	t.Helper()
	var r struct {
		Services []struct{ Name string }
	}
	s.getJSON(t, "/api/v1/services?start="+url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339)), &r)
	var out []string
	for _, x := range r.Services {
		out = append(out, x.Name)
	}
	return out
}

// waitServices waits until every one of names has spans.
func (s *server) waitServices(t *testing.T, names ...string) {
	t.Helper()
	var have []string
	deadline := time.Now().Add(15 * time.Second)
	for {
		have = s.serviceNames(t)
		if !slices.ContainsFunc(names, func(n string) bool { return !slices.Contains(have, n) }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for services %q: have %q", names, have)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// multipartDoc is body as the file part "file" of a multipart/form-data
// body, as curl -F or a browser's FormData sends it.
func multipartDoc(t *testing.T, name string, body []byte) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(body)
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), buf.Bytes()
}

// refusals sums the collector's flowscope_http_requests_refused_total.
func (s *server) refusals(t *testing.T) float64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.base+"/metrics", nil)
	if s.readToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.readToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "flowscope_http_requests_refused_total{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// attackPage is a page of another origin that tries to make the browser
// write to the collector: no-cors fetches with the content types a page
// may send without asking (text/plain, multipart/form-data), and forms
// posting text/plain JSON into hidden frames. window.__results gets an
// entry per attempt once it has settled.
const attackPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>Free kittens</title></head>
<body>
<p>Nothing to see here.</p>
<script>
const C = %s;
const results = window.__results = {};
const note = (k, v) => { results[k] = v; };
function attempt(key, run) {
  return run().then(r => note(key, 'sent: ' + r.type), e => note(key, 'failed: ' + e.message));
}
// form posts name=value as text/plain into a hidden frame: with the name
// and value cut from a JSON document at an "=", the body is that JSON.
function form(key, action, name, value) {
  return new Promise(resolve => {
    const frame = document.createElement('iframe');
    frame.name = 'sink-' + key;
    frame.hidden = true;
    document.body.appendChild(frame);
    frame.addEventListener('load', () => {
      try {
        if (frame.contentWindow.location.href === 'about:blank') return; // the frame's first document
      } catch {
        /* another origin's answer: the form went out */
      }
      note(key, 'loaded');
      resolve();
    });
    const f = document.createElement('form');
    f.method = 'POST';
    f.enctype = 'text/plain';
    f.action = action;
    f.target = frame.name;
    const input = document.createElement('input');
    input.type = 'hidden';
    input.name = name;
    input.value = value;
    f.appendChild(input);
    document.body.appendChild(f);
    f.submit();
  });
}
Promise.all([
  attempt('import-text', () => fetch(C.importURL + '?name=x.json', {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: C.importBody})),
  attempt('import-multipart', () => {
    const fd = new FormData();
    fd.append('file', new Blob([C.multipartBody], {type: 'application/json'}), 'x.json');
    return fetch(C.importURL + '?name=x.json', {method: 'POST', mode: 'no-cors', body: fd});
  }),
  attempt('zipkin-text', () => fetch(C.zipkinURL, {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: C.zipkinBody})),
  form('zipkin-form', C.zipkinURL, C.zipkinForm[0], C.zipkinForm[1]),
  form('import-form', C.importURL + '?name=x.json', C.importForm[0], C.importForm[1]),
]);
</script>
</body></html>`

// textPlainForm cuts a Zipkin document of service into the name and value
// of a text/plain form field whose encoding (name=value) is the document:
// the span gets a tag whose value is "=".
func textPlainForm(service string) [2]string {
	sp := zipkinSpan(service)
	sp["tags"] = map[string]string{"pad": "="}
	b, err := json.Marshal([]map[string]any{sp})
	if err != nil {
		panic(err)
	}
	doc := string(b)
	i := strings.Index(doc, `"pad":"="`) + len(`"pad":"`)
	return [2]string{doc[:i], doc[i+1:]}
}

// TestCrossSiteWrites serves a page of another origin that tries every
// write a page can make a browser send without asking — no-cors fetches
// with text/plain and multipart bodies, and text/plain form posts — to the
// import endpoint and the Zipkin receiver of a collector without tokens.
// The same documents sent by a client that is no browser are stored, so
// only the browser's cross-site context makes the difference: nothing the
// page sent may be stored, and the collector counts the refusals.
func TestCrossSiteWrites(t *testing.T) {
	browser(t)
	s := startCollector(t)
	importURL := s.base + "/api/v1/import"
	zipkinURL := "http://" + s.addrs.Zipkin + "/api/v2/spans"

	// The control: the same requests from Go (no Origin, no Sec-Fetch-Site,
	// a JSON content type) are stored.
	control := func(prefix string) []string {
		post(t, importURL+"?name=x.json", "application/json", "", zipkinDoc(prefix+"-import"))
		ct, body := multipartDoc(t, "x.json", zipkinDoc(prefix+"-multipart"))
		post(t, importURL+"?name=x.json", ct, "", body)
		post(t, zipkinURL, "application/json", "", zipkinDoc(prefix+"-zipkin"))
		form := textPlainForm(prefix + "-form")
		post(t, zipkinURL, "application/json", "", []byte(form[0]+"="+form[1]))
		return []string{prefix + "-import", prefix + "-multipart", prefix + "-zipkin", prefix + "-form"}
	}
	s.waitServices(t, control("control")...)

	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		variant := strings.Trim(r.URL.Path, "/")
		cfg, _ := json.Marshal(map[string]any{
			"importURL": importURL, "zipkinURL": zipkinURL,
			"importBody":    string(zipkinDoc("evil-" + variant + "-import")),
			"multipartBody": string(zipkinDoc("evil-" + variant + "-multipart")),
			"zipkinBody":    string(zipkinDoc("evil-" + variant + "-zipkin")),
			"zipkinForm":    textPlainForm("evil-" + variant + "-zipkin-form"),
			"importForm":    textPlainForm("evil-" + variant + "-import-form"),
		})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, attackPage, cfg)
	}))
	defer attacker.Close()
	_, port, _ := strings.Cut(strings.TrimPrefix(attacker.URL, "http://"), ":")

	// 127.0.0.1 on another port is another origin of the same site
	// (Sec-Fetch-Site: same-site); localhost is another site.
	for _, v := range []struct{ name, host string }{{"same-site", "127.0.0.1"}, {"cross-site", "localhost"}} {
		t.Run(v.name, func(t *testing.T) {
			before := s.refusals(t)
			b := newTab(t, "http://"+v.host+":"+port)
			ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
			defer cancel()
			if err := chromedp.Do(ctx, chromedp.Navigate(b.base+"/"+v.name)); err != nil {
				t.Fatal(err)
			}
			b.wait(`window.__results && Object.keys(window.__results).length === 5`, 15*time.Second, "the attempts to settle")
			t.Logf("attempts: %s", eval[string](b, `JSON.stringify(window.__results)`))
			// Whatever was accepted is stored before the store answers
			// these later writes.
			s.waitServices(t, control("control-"+v.name)...)
			if evil := slices.DeleteFunc(s.serviceNames(t), func(n string) bool { return !strings.HasPrefix(n, "evil") }); len(evil) > 0 {
				t.Errorf("the other origin's page stored spans of %q", evil)
			}
			var traces struct{ Traces []json.RawMessage }
			for _, suffix := range []string{"import", "multipart", "zipkin", "zipkin-form", "import-form"} {
				s.getJSON(t, "/api/v1/traces?service=evil-"+v.name+"-"+suffix+"&start="+url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339)), &traces)
				if len(traces.Traces) > 0 {
					t.Errorf("a trace of evil-%s-%s was stored", v.name, suffix)
				}
			}
			if n := s.refusals(t) - before; n < 5 {
				t.Errorf("the collector counted %v refused requests, want at least the page's 5", n)
			}
		})
	}
}

// Tokens of TestUIToken.
const (
	uiReadToken  = "read-3f6c1e0b9a4d47c2b8e5a1d0c7f2"
	uiWriteToken = "write-8b1d4e7a2c9f40b6a3e5d1c8f07"
)

// TestUIToken runs the UI against a collector that requires a read and a
// write token: the UI asks for the read token in one dialog however many
// requests were refused, shows the collector's message for a wrong token
// and asks again, loads the map with the right one, asks for the write
// token on a write (a rules reload, an import), and forgets the tokens on
// demand. The tokens never show in the address, the history, the page's
// markup or the console.
func TestUIToken(t *testing.T) {
	browser(t)
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	writeFile(t, rules, "rules:\n  - alert: SlowCheckout\n    select: {source: frontend, target: checkout}\n    signal: p99\n    above: 10s\n    window: 5m\n")
	s := startCollector(t, withRules(rules), func(c *config.Config) {
		c.Security.ReadToken = uiReadToken
		c.Security.WriteToken = uiWriteToken
	})
	now := time.Now()
	var spans []span
	for i := 0; i < 20; i++ {
		spans = append(spans, call("frontend", "checkout", "POST checkout", "POST /checkout", now.Add(-20*time.Second+time.Duration(i)*time.Second), 20*time.Millisecond, false)...)
	}
	s.postTraces(t, spans) // no ingest token configured

	t.Run("API", func(t *testing.T) {
		for _, tc := range []struct{ token, challenge string }{
			{"", `Bearer realm="flowscope", scope="read"`},
			{"wrong-token-0123456789abcdef", `scope="read"`},
		} {
			req, _ := http.NewRequest(http.MethodGet, s.base+"/api/v1/services", nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e struct {
				Code    int
				Message string
			}
			json.Unmarshal(body, &e)
			if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), tc.challenge) || e.Code != 401 || e.Message == "" {
				t.Errorf("GET /api/v1/services with token %q: %d, WWW-Authenticate %q, body %s", tc.token, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
			}
		}
		var st struct {
			TLS    bool            `json:"tls"`
			Tokens map[string]bool `json:"tokens"`
		}
		resp, err := http.Get(s.base + "/api/v1/security")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if resp.StatusCode != 200 || !st.Tokens["read"] || !st.Tokens["write"] || st.Tokens["ingest"] || st.TLS {
			t.Errorf("GET /api/v1/security without a token: %d %+v", resp.StatusCode, st)
		}
		if names := s.serviceNames(t); !slices.Contains(names, "checkout") {
			t.Errorf("services with the read token: %q", names)
		}
	})

	b := newTab(t, s.base)
	b.allow("status of 401") // the browser logs the refused requests
	tokens := []string{uiReadToken, uiWriteToken}
	// secret checks that no token is in the address, the history, the
	// markup, an input (but the dialog's while typed), or the console.
	secret := func(t *testing.T, where string) {
		t.Helper()
		b := b.with(t)
		page := eval[string](b, `location.href + '\n' + document.title + '\n' + document.documentElement.outerHTML + '\n' + [...document.querySelectorAll('input, textarea')].map(e => e.value).join('\n')`)
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		hist, err := chromedp.Run(ctx, chromedp.NavigationEntries())
		if err != nil {
			t.Fatal(err)
		}
		var entries []string
		for _, e := range hist.Entries {
			entries = append(entries, e.URL, e.UserTypedURL, e.Title)
		}
		for _, tok := range tokens {
			if strings.Contains(page, tok) {
				t.Errorf("%s: a token is in the page (address, title, markup or an input)", where)
			}
			if slices.ContainsFunc(entries, func(e string) bool { return strings.Contains(e, tok) }) {
				t.Errorf("%s: a token is in the history: %q", where, entries)
			}
			if slices.ContainsFunc(b.consoleLines(), func(l string) bool { return strings.Contains(l, tok) }) {
				t.Errorf("%s: a token is in the console", where)
			}
		}
	}
	const dialog = `document.querySelector('dialog[open][data-testid=auth-dialog]')`
	openDialogs := func() int { return eval[int](b, `document.querySelectorAll('dialog[open]').length`) }
	submit := func(b *tab, token string) {
		b.t.Helper()
		b.do(chromedp.SendKeys(chromedp.CSS(`dialog[open] [data-testid=auth-token]`), token+kb.Enter))
	}

	// clickReload clicks sel, which reloads the page, and waits for the
	// app to start again.
	clickReload := func(b *tab, sel string) {
		b.t.Helper()
		// Once seen on a loaded CI machine, a click did not start the
		// reload within 10 s. The click is retried (as a user clicks again)
		// after logging what was under the pointer; a handler that does not
		// reload still fails the test.
		for attempt := 1; ; attempt++ {
			eval[bool](b, `window.__beforeReload = true`)
			b.do(chromedp.Click(chromedp.CSS(sel)))
			deadline := time.Now().Add(5 * time.Second)
			for {
				ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
				done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!window.__beforeReload && !!window.__flowscope && !!document.body.dataset.view`))
				cancel()
				if err == nil && done {
					return
				}
				if time.Now().After(deadline) {
					ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
					why, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
						const el = document.querySelector(`+js(sel)+`);
						if (!el) return 'no element';
						const r = el.getBoundingClientRect();
						const at = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
						return JSON.stringify({beforeReload: !!window.__beforeReload, view: document.body.dataset.view || null, hidden: el.hidden, rect: [r.x, r.y, r.width, r.height], under: at ? at.outerHTML.slice(0, 120) : null, dialogs: document.querySelectorAll('dialog[open]').length});
					})()`))
					cancel()
					if attempt == 3 {
						b.t.Fatalf("clicking %s %d times did not reload the UI (%v): %s", sel, attempt, err, why)
					}
					b.t.Logf("click %d on %s did not reload the UI within 5 s: %s", attempt, sel, why)
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}

	t.Run("ReadToken", func(t *testing.T) {
		b := b.with(t)
		b.open("map")
		b.wait(dialog+` && `+dialog+`.dataset.scope === 'read'`, 10*time.Second, "the read token dialog")
		// The map's requests and the header's alert poll were all refused:
		// they wait for the one dialog.
		time.Sleep(1500 * time.Millisecond)
		if n := openDialogs(); n != 1 {
			t.Errorf("%d dialogs open, want 1", n)
		}
		if n := eval[int](b, `document.querySelectorAll('[data-testid=auth-dialog]').length`); n != 1 {
			t.Errorf("%d token dialogs in the page, want 1", n)
		}
		form := eval[map[string]any](b, `(d => ({
			type: d.querySelector('[data-testid=auth-token]').type,
			label: d.querySelector('[data-testid=auth-token]').labels[0].textContent,
			title: document.getElementById(d.getAttribute('aria-labelledby')).textContent,
			text: d.innerText,
			focused: document.activeElement === d.querySelector('[data-testid=auth-token]'),
			remember: d.querySelector('[data-testid=auth-remember]').checked,
		}))(`+dialog+`)`)
		text, _ := form["text"].(string)
		if form["type"] != "password" || form["label"] != "Read token" || form["title"] != "Read token needed" || form["focused"] != true || form["remember"] != false ||
			!strings.Contains(text, "FLOWSCOPE_READ_TOKEN") || !strings.Contains(text, "--read-token-file") || !strings.Contains(text, "Remember on this device") {
			t.Errorf("the read token dialog: %v", form)
		}
		b.shot("token-dialog")

		submit(b, "wrong-token-0123456789abcdef")
		b.wait(dialog+` && !`+dialog+`.querySelector('[data-testid=auth-error]').hidden`, 10*time.Second, "the wrong token's error")
		if msg := eval[string](b, dialog+`.querySelector('[data-testid=auth-error]').textContent`); !strings.Contains(msg, `does not grant scope "read"`) {
			t.Errorf("the wrong token's error reads %q, want the collector's message", msg)
		}
		if v := eval[string](b, dialog+`.querySelector('[data-testid=auth-token]').value`); v != "" {
			t.Errorf("the input kept %q after the submit", v)
		}
		if n := openDialogs(); n != 1 {
			t.Errorf("%d dialogs open after a wrong token, want 1", n)
		}
		b.shot("token-dialog-wrong")

		submit(b, uiReadToken)
		b.wait(`!document.querySelector('dialog[open]')`, 10*time.Second, "the dialog to close")
		b.wait(`(s => s && s.nodes.includes('frontend') && s.nodes.includes('checkout'))(__flowscope.mapState())`, 15*time.Second, "the map")
		b.wait(`document.querySelector('[data-testid=nav-alerts]').title === '0 firing, 0 pending'`, 15*time.Second, "the alert poll to go through")
		if n := eval[int](b, `document.querySelectorAll('[data-testid=auth-dialog]').length`); n != 0 {
			t.Errorf("%d token dialogs left in the page", n)
		}
		stored := eval[map[string]any](b, `({session: sessionStorage.getItem('flowscope.token.read') === `+js(uiReadToken)+`, local: localStorage.getItem('flowscope.token.read')})`)
		if stored["session"] != true || stored["local"] != nil {
			t.Errorf("the read token kept as %v, want in sessionStorage only", stored)
		}
		if !eval[bool](b, `!document.querySelector('[data-testid=auth-forget]').hidden`) {
			t.Error("no Forget tokens button")
		}
		secret(t, "after the read token")

		// A reload keeps the session's token: no dialog.
		b.open("traces")
		time.Sleep(time.Second)
		if n := openDialogs(); n != 0 {
			t.Errorf("%d dialogs after a reload with the token held", n)
		}
		b.checkClean()
	})

	t.Run("WriteToken", func(t *testing.T) {
		b := b.with(t)
		b.open("alerts")
		b.wait(`document.querySelector('[data-testid=rules-reload]')`, 10*time.Second, "the rules")
		b.do(chromedp.Click(chromedp.CSS(`[data-testid=rules-reload]`)))
		b.wait(dialog+` && `+dialog+`.dataset.scope === 'write'`, 10*time.Second, "the write token dialog")
		if text := eval[string](b, dialog+`.innerText`); !strings.Contains(text, "Write token needed") || !strings.Contains(text, "FLOWSCOPE_WRITE_TOKEN") || !strings.Contains(text, "--write-token-file") {
			t.Errorf("the write token dialog reads %q", text)
		}
		// The read token does not write.
		submit(b, uiReadToken)
		b.wait(dialog+` && !`+dialog+`.querySelector('[data-testid=auth-error]').hidden`, 10*time.Second, "the read token's refusal")
		if msg := eval[string](b, dialog+`.querySelector('[data-testid=auth-error]').textContent`); !strings.Contains(msg, `"write"`) {
			t.Errorf("the read token's refusal reads %q", msg)
		}
		submit(b, uiWriteToken)
		b.wait(`!document.querySelector('dialog[open]')`, 10*time.Second, "the dialog to close")
		b.wait(`(e => e && e.textContent === 'Loaded 1 rule.')(document.querySelector('[data-testid=rules-reload-result]'))`, 10*time.Second, "the reload")
		secret(t, "after the write token")

		// The import sends the write token, held now.
		file := filepath.Join(t.TempDir(), "upload.json")
		writeFile(t, file, string(zipkinDoc("uploaded")))
		b.open("import")
		b.do(chromedp.SetUploadFiles(chromedp.CSS(`[data-testid=import-file]`), []string{file}))
		b.wait(`!document.querySelector('[data-testid=import-submit]').disabled`, 5*time.Second, "the file to be chosen")
		b.do(chromedp.Click(chromedp.CSS(`[data-testid=import-submit]`)))
		b.wait(`document.querySelector('[data-testid=import-ok]') || document.querySelector('[data-testid=import-error]')`, 15*time.Second, "the import")
		if res := eval[string](b, `document.querySelector('[data-testid=import-result]').innerText`); !strings.Contains(res, "Imported upload.json") {
			t.Errorf("import: %s", res)
		}
		if n := openDialogs(); n != 0 {
			t.Errorf("%d dialogs during an import with the write token held", n)
		}
		s.waitServices(t, "uploaded")
		secret(t, "after the import")
		b.checkClean()
	})

	t.Run("Forget", func(t *testing.T) {
		b := b.with(t)
		b.open("map")
		b.wait(`!document.querySelector('[data-testid=auth-forget]').hidden`, 5*time.Second, "the Forget tokens button")
		clickReload(b, `[data-testid=auth-forget]`)
		b.wait(dialog+` && `+dialog+`.dataset.scope === 'read'`, 10*time.Second, "the read token dialog after Forget tokens")
		b.open("map")
		b.wait(dialog+` && `+dialog+`.dataset.scope === 'read'`, 10*time.Second, "the read token dialog after a reload")
		if kept := eval[[]string](b, `['read', 'write'].flatMap(s => [sessionStorage.getItem('flowscope.token.' + s), localStorage.getItem('flowscope.token.' + s)]).filter(Boolean)`); len(kept) > 0 {
			t.Errorf("%d tokens kept after Forget tokens", len(kept))
		}

		// Escape cancels: the view shows the collector's refusal, and the
		// header offers to enter the token.
		b.do(chromedp.KeyEvent(kb.Escape))
		b.wait(`!document.querySelector('dialog[open]')`, 5*time.Second, "Escape to close the dialog")
		b.wait(`!document.querySelector('[data-testid=auth-enter]').hidden`, 5*time.Second, "the Enter token button")
		b.wait(`/401/.test(document.querySelector('[data-testid=main]').innerText)`, 10*time.Second, "the map's refusal")
		time.Sleep(time.Second)
		if n := openDialogs(); n != 0 {
			t.Errorf("%d dialogs after Escape, want none until asked", n)
		}

		// Remembered on the device: localStorage; then an import asks for
		// the write token before it uploads.
		clickReload(b, `[data-testid=auth-enter]`)
		b.wait(dialog+` && `+dialog+`.dataset.scope === 'read'`, 10*time.Second, "the read token dialog after Enter token")
		b.do(chromedp.Click(chromedp.CSS(`dialog[open] [data-testid=auth-remember]`)))
		submit(b, uiReadToken)
		b.wait(`!document.querySelector('dialog[open]')`, 10*time.Second, "the dialog to close")
		b.wait(`localStorage.getItem('flowscope.token.read') === `+js(uiReadToken)+` && !sessionStorage.getItem('flowscope.token.read')`, 10*time.Second, "the token kept on the device")

		file := filepath.Join(t.TempDir(), "second.json")
		writeFile(t, file, string(zipkinDoc("uploaded-second")))
		b.open("import")
		b.do(chromedp.SetUploadFiles(chromedp.CSS(`[data-testid=import-file]`), []string{file}))
		b.wait(`!document.querySelector('[data-testid=import-submit]').disabled`, 5*time.Second, "the file to be chosen")
		b.do(chromedp.Click(chromedp.CSS(`[data-testid=import-submit]`)))
		b.wait(dialog+` && `+dialog+`.dataset.scope === 'write'`, 10*time.Second, "the write token dialog before the upload")
		if !eval[bool](b, dialog+`.querySelector('[data-testid=auth-remember]').checked`) {
			t.Error("the write dialog does not start with the device choice of the read token")
		}
		submit(b, uiWriteToken)
		b.wait(`document.querySelector('[data-testid=import-ok]') || document.querySelector('[data-testid=import-error]')`, 15*time.Second, "the import")
		if res := eval[string](b, `document.querySelector('[data-testid=import-result]').innerText`); !strings.Contains(res, "Imported second.json") {
			t.Errorf("import: %s", res)
		}
		s.waitServices(t, "uploaded-second")
		secret(t, "after the second import")

		clickReload(b, `[data-testid=auth-forget]`)
		b.wait(dialog, 10*time.Second, "the dialog after Forget tokens")
		if n := eval[int](b, `[...Object.keys(localStorage), ...Object.keys(sessionStorage)].filter(k => k.startsWith('flowscope.token')).length`); n != 0 {
			t.Errorf("%d tokens left in storage after Forget tokens", n)
		}
		secret(t, "at the end")
		b.checkClean()
	})
}

// securityProxy serves the collector's UI and API through a proxy that
// answers GET /api/v1/security itself with status, as an exposed
// collector would.
func securityProxy(t *testing.T, s *server, status string) *httptest.Server {
	target, err := url.Parse(s.base)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/security" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, status)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestExposureBanner shows the collector's exposure warnings in a banner
// above every view (served by a proxy: the tests bind loopback only), with
// markup in a warning shown as text; it stays dismissed for the session.
// Served over TLS, the header shows a lock. On loopback there is neither.
func TestExposureBanner(t *testing.T) {
	browser(t)
	s := startCollector(t)
	seedShop(t, s)
	warnings := []string{
		"listener http on 0.0.0.0:8686 is reachable beyond loopback without TLS (security.tls), a read token (FLOWSCOPE_READ_TOKEN)",
		`listener zipkin on 0.0.0.0:9411 is reachable beyond loopback without <img src=x onerror=window.__xss=1>`,
	}
	status, _ := json.Marshal(map[string]any{"tls": true, "mutualTls": true, "tokens": map[string]bool{"ingest": false, "read": false, "write": false}, "warnings": warnings})
	proxy := securityProxy(t, s, string(status))

	t.Run("Warnings", func(t *testing.T) {
		b := newTab(t, proxy.URL)
		for _, route := range []string{"map", "traces", "alerts", "import"} {
			b.open(route)
			b.wait(`(e => e && !e.hidden)(document.querySelector('[data-testid=security-banner]'))`, 10*time.Second, "the banner on "+route)
			got := eval[[]string](b, `[...document.querySelectorAll('[data-testid=security-warning]')].map(e => e.textContent)`)
			if !slices.Equal(got, warnings) {
				t.Errorf("%s: the banner lists %q, want %q", route, got, warnings)
			}
		}
		text := eval[string](b, `document.querySelector('[data-testid=security-banner]').innerText`)
		if !strings.Contains(text, "docs/security.md") || !strings.Contains(text, "exposed") {
			t.Errorf("the banner reads %q", text)
		}
		if eval[bool](b, `!!window.__xss || !!document.querySelector('[data-testid=security-banner] img')`) {
			t.Error("markup in a warning was parsed")
		}
		lock := eval[map[string]any](b, `(e => ({shown: !e.hidden, label: e.getAttribute('aria-label'), text: e.textContent}))(document.querySelector('[data-testid=tls-lock]'))`)
		if lock["shown"] != true || !strings.Contains(fmt.Sprint(lock["label"]), "TLS") || !strings.Contains(fmt.Sprint(lock["text"]), "mTLS") {
			t.Errorf("the TLS lock: %v", lock)
		}
		// The banner is above the view, below the header.
		if !eval[bool](b, `(n => n.getBoundingClientRect().bottom <= document.querySelector('[data-testid=security-banner]').getBoundingClientRect().top + 1 && document.querySelector('[data-testid=security-banner]').getBoundingClientRect().bottom <= document.querySelector('[data-testid=main]').getBoundingClientRect().top + 1)(document.querySelector('[data-testid=nav]'))`) {
			t.Error("the banner is not between the header and the view")
		}
		b.shot("security-banner")

		b.do(chromedp.Click(chromedp.CSS(`[data-testid=security-banner-dismiss]`)))
		b.wait(`document.querySelector('[data-testid=security-banner]').hidden`, 5*time.Second, "the banner to go")
		b.open("map")
		time.Sleep(time.Second)
		if eval[bool](b, `!document.querySelector('[data-testid=security-banner]').hidden`) {
			t.Error("the dismissed banner shows again in the same session")
		}
		b.checkClean()

		// Another tab is another session: the banner shows.
		b2 := newTab(t, proxy.URL)
		b2.open("map")
		b2.wait(`(e => e && !e.hidden)(document.querySelector('[data-testid=security-banner]'))`, 10*time.Second, "the banner in a new session")
		b2.checkClean()
	})

	t.Run("Loopback", func(t *testing.T) {
		var st struct {
			TLS      bool     `json:"tls"`
			Warnings []string `json:"warnings"`
		}
		s.getJSON(t, "/api/v1/security", &st)
		if st.TLS || len(st.Warnings) != 0 {
			t.Fatalf("the collector on loopback reports %+v", st)
		}
		b := newTab(t, s.base)
		b.open("map")
		b.wait(`(s => s && s.nodes.length > 0)(__flowscope.mapState())`, 15*time.Second, "the map")
		time.Sleep(500 * time.Millisecond)
		if eval[bool](b, `!document.querySelector('[data-testid=security-banner]').hidden || !document.querySelector('[data-testid=tls-lock]').hidden`) {
			t.Error("a banner or lock shows for a collector on loopback without TLS")
		}
		b.checkClean()
	})
}
