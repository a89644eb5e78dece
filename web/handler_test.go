package web

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, srv *httptest.Server, method, p string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+p, strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func mustGet(t *testing.T, srv *httptest.Server, p string) []byte {
	t.Helper()
	code, _, body := get(t, srv, "GET", p)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", p, code, body)
	}
	return body
}

func echoAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("api:" + r.Method + " " + r.URL.Path)) })
}

// TestDashboardsAPI lists and reads the built-in dashboards and those of a
// user directory with a bad file, which is reported and left out.
func TestDashboardsAPI(t *testing.T) {
	dir := t.TempDir()
	write := func(name, doc string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("mine.json", `{"title":"Mine","panels":[{"type":"flowgraph","title":"Map","query":{"level":"zone"}}]}`)
	write("bad.json", `{"title":"Bad","panels":[{"type":"flowgraph","title":"Map","query":{"service":"x"}}]}`)
	write("oncall.json", `{"title":"On call","panels":[{"type":"alerts","title":"Paging","width":12,"query":{"state":"firing","labels":"severity=page"},"options":{"limit":5}}]}`)
	write("resolved.json", `{"title":"Resolved","panels":[{"type":"alerts","title":"Resolved","query":{"state":"resolved"}}]}`)
	srv := httptest.NewServer(NewHandler(Options{API: echoAPI(), DashboardsDir: dir}))
	defer srv.Close()

	code, h, body := get(t, srv, "GET", "/api/v1/dashboards")
	if code != 200 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("list: %d %s %s", code, h.Get("Content-Type"), body)
	}
	var list struct {
		Dashboards []struct {
			ID, Title, Description, Source string
			Panels                         int
		}
		Errors []struct{ File, Error string }
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range list.Dashboards {
		got = append(got, d.Source+":"+d.ID)
		if d.Title == "" || d.Panels == 0 {
			t.Errorf("dashboard %+v lacks a title or panels", d)
		}
	}
	if strings.Join(got, " ") != "builtin:architecture-flow builtin:service-overview user:mine user:oncall" {
		t.Errorf("dashboards %v", got)
	}
	if len(list.Errors) != 2 || list.Errors[0].File != "bad.json" || !strings.Contains(list.Errors[0].Error, `does not take "service"`) ||
		list.Errors[1].File != "resolved.json" || !strings.Contains(list.Errors[1].Error, `state "resolved"`) {
		t.Errorf("errors %+v, want bad.json's and resolved.json's", list.Errors)
	}

	code, _, body = get(t, srv, "GET", "/api/v1/dashboards/service-overview")
	var d struct {
		ID, Title, Source string
		Panels            []struct{ Type string }
	}
	if err := json.Unmarshal(body, &d); code != 200 || err != nil || d.ID != "service-overview" || d.Source != "builtin" || len(d.Panels) < 4 {
		t.Errorf("get builtin: %d %v %s", code, err, body)
	}
	code, _, body = get(t, srv, "GET", "/api/v1/dashboards/oncall")
	if code != 200 || !strings.Contains(string(body), `"type":"alerts"`) || !strings.Contains(string(body), `"labels":"severity=page"`) {
		t.Errorf("get user alerts dashboard: %d %s", code, body)
	}
	if !strings.Contains(string(mustGet(t, srv, "/api/v1/dashboards/service-overview")), `"type":"alerts"`) {
		t.Errorf("the service overview has no alerts panel")
	}
	code, _, body = get(t, srv, "GET", "/api/v1/dashboards/mine")
	if code != 200 || !strings.Contains(string(body), `"source":"user"`) || !strings.Contains(string(body), `"level":"zone"`) {
		t.Errorf("get user: %d %s", code, body)
	}
	for _, id := range []string{"nope", "bad", "resolved"} {
		code, _, body = get(t, srv, "GET", "/api/v1/dashboards/"+id)
		var e struct {
			Code    int
			Message string
		}
		if err := json.Unmarshal(body, &e); code != 404 || err != nil || e.Code != 404 || !strings.Contains(e.Message, id) {
			t.Errorf("get %s: %d %s, want a 404 naming it", id, code, body)
		}
	}
	// Other methods and paths stay with the API.
	if _, _, body := get(t, srv, "POST", "/api/v1/dashboards"); string(body) != "api:POST /api/v1/dashboards" {
		t.Errorf("POST went to %q", body)
	}
	if _, _, body := get(t, srv, "GET", "/api/v1/services"); string(body) != "api:GET /api/v1/services" {
		t.Errorf("services went to %q", body)
	}
}

// TestDashboardsDirMissing: a directory that disappeared is an error in
// the list, not a failure.
func TestDashboardsDirMissing(t *testing.T) {
	srv := httptest.NewServer(NewHandler(Options{API: echoAPI(), DashboardsDir: filepath.Join(t.TempDir(), "gone")}))
	defer srv.Close()
	code, _, body := get(t, srv, "GET", "/api/v1/dashboards")
	if code != 200 || !strings.Contains(string(body), `"source":"builtin"`) || !strings.Contains(string(body), `"errors":[{"file"`) {
		t.Errorf("%d %s", code, body)
	}
}

// TestImportRoute: POST /api/v1/import goes to Options.Import when set.
func TestImportRoute(t *testing.T) {
	imp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write([]byte("import:" + r.URL.Query().Get("name") + ":" + string(b)))
	})
	srv := httptest.NewServer(NewHandler(Options{API: echoAPI(), Import: imp}))
	defer srv.Close()
	if _, _, body := get(t, srv, "POST", "/api/v1/import?name=a.json"); string(body) != "import:a.json:body" {
		t.Errorf("POST import went to %q", body)
	}
	if _, _, body := get(t, srv, "GET", "/api/v1/import"); string(body) != "api:GET /api/v1/import" {
		t.Errorf("GET import went to %q", body)
	}
	srv2 := httptest.NewServer(NewHandler(Options{API: echoAPI()}))
	defer srv2.Close()
	if _, _, body := get(t, srv2, "POST", "/api/v1/import"); string(body) != "api:POST /api/v1/import" {
		t.Errorf("without Import, POST import went to %q", body)
	}
}

var wantTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// TestStaticAssets serves every embedded file with its content type and
// the security headers, checks that every module the UI imports is
// embedded, and that no script builds markup from strings.
func TestStaticAssets(t *testing.T) {
	srv := httptest.NewServer(NewHandler(Options{API: echoAPI()}))
	defer srv.Close()
	sub, err := fs.Sub(static, "static")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files[p] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"index.html", "app.css", "favicon.svg", "js/main.js", "js/graph.js", "js/alertfeed.js", "js/views/map.js", "js/views/dashboards.js", "js/views/alerts.js", "js/views/synthetics.js", "js/auth.js", "js/security.js"} {
		if !files[want] {
			t.Errorf("%s is not embedded", want)
		}
	}
	importRE := regexp.MustCompile(`(?m)^\s*import\s+(?:[^'"]*?from\s+)?['"]([^'"]+)['"]`)
	unsafeRE := regexp.MustCompile(`\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\(`)
	for p := range files {
		code, h, body := get(t, srv, "GET", "/"+p)
		if code != 200 {
			t.Errorf("%s: %d", p, code)
			continue
		}
		if want, ok := wantTypes[path.Ext(p)]; ok && h.Get("Content-Type") != want {
			t.Errorf("%s: Content-Type %q, want %q", p, h.Get("Content-Type"), want)
		}
		if h.Get("Content-Security-Policy") != "default-src 'self'; style-src 'self' 'unsafe-inline'" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: security headers %v", p, h)
		}
		if path.Ext(p) != ".js" {
			continue
		}
		if m := unsafeRE.Find(body); m != nil {
			t.Errorf("%s uses %s: render data with textContent / createTextNode only", p, m)
		}
		for _, m := range importRE.FindAllSubmatch(body, -1) {
			dep := path.Join(path.Dir(p), string(m[1]))
			if !files[dep] {
				t.Errorf("%s imports %s, which is not embedded", p, dep)
			}
		}
	}
	_, _, index := get(t, srv, "GET", "/")
	for _, want := range []string{`<script type="module" src="js/main.js">`, `href="app.css"`, "<title>Flowscope</title>"} {
		if !strings.Contains(string(index), want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]`).Match(index) || regexp.MustCompile(`\son[a-z]+=`).Match(index) {
		t.Errorf("index.html has inline script, which the CSP forbids")
	}
	if code, h, _ := get(t, srv, "GET", "/js/nope.js"); code != 404 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Errorf("missing module: %d %s", code, h.Get("Content-Type"))
	}
}
