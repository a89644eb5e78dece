package dashboards

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestBuiltin validates every shipped file against the schema (strictly:
// unknown members are errors) and checks the two dashboards the UI links to.
func TestBuiltin(t *testing.T) {
	names, err := filepath.Glob("*.json")
	if err != nil || len(names) == 0 {
		t.Fatalf("no dashboards shipped: %v", err)
	}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Parse(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if want := strings.TrimSuffix(name, ".json"); d.ID != want {
			t.Errorf("%s: id %q, want the file name %q", name, d.ID, want)
		}
	}
	b, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != len(names) {
		t.Errorf("Builtin has %d dashboards, %d files", len(b), len(names))
	}
	titles := map[string]string{}
	for _, e := range b {
		titles[e.ID] = e.Title
		if e.Source != SourceBuiltin {
			t.Errorf("%s: source %q", e.ID, e.Source)
		}
	}
	for id, title := range map[string]string{"service-overview": "Service overview", "architecture-flow": "Architecture flow"} {
		if titles[id] != title {
			t.Errorf("builtin %s: title %q, want %q", id, titles[id], title)
		}
	}
}

// TestParseErrors lists invalid dashboards and the problem each must name.
func TestParseErrors(t *testing.T) {
	f := func(doc, want string) {
		t.Helper()
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%s):\n got %v\nwant an error containing %q", doc, err, want)
		}
	}
	const panel = `{"type":"flowgraph","title":"m"}`
	f(`{`, "decode")
	f(`{"title":"x","panels":[`+panel+`]} {}`, "data after")
	f(`{"id":"x","title":"x","panels":[`+panel+`],"colour":"red"}`, `unknown field "colour"`)
	f(`{"id":"X Y","title":"x","panels":[`+panel+`]}`, `id "X Y"`)
	f(`{"id":"x","panels":[`+panel+`]}`, "title: missing")
	f(`{"id":"x","title":"x","panels":[]}`, "at least one panel")
	f(`{"id":"x","title":"x","range":"2d","panels":[`+panel+`]}`, `range "2d"`)
	f(`{"id":"x","title":"x","refresh":"10ms","panels":[`+panel+`]}`, `refresh "10ms"`)
	f(`{"id":"x","title":"x","panels":[{"type":"pie","title":"p"}]}`, `panels[0].type "pie"`)
	f(`{"id":"x","title":"x","panels":[{"type":"flowgraph"}]}`, "panels[0].title: missing")
	f(`{"id":"x","title":"x","panels":[{"type":"flowgraph","title":"m","width":13}]}`, "width 13")
	f(`{"id":"x","title":"x","panels":[{"type":"flowgraph","title":"m","height":50}]}`, "height 50")
	f(`{"id":"x","title":"x","panels":[{"type":"flowgraph","title":"m","query":{"service":"a"}}]}`, `does not take "service"`)
	f(`{"id":"x","title":"x","panels":[{"type":"flowgraph","title":"m","query":{"level":"rack"}}]}`, `level "rack"`)
	f(`{"id":"x","title":"x","panels":[{"type":"flowgraph","title":"m","query":{"compare":"${arch}"}}]}`, "undefined variable ${arch}")
	f(`{"id":"x","title":"x","panels":[{"type":"distribution","title":"d"}]}`, "either service, or source and target")
	f(`{"id":"x","title":"x","panels":[{"type":"distribution","title":"d","query":{"source":"a"}}]}`, "needs both source and target")
	f(`{"id":"x","title":"x","panels":[{"type":"metric","title":"d"}]}`, "query.name: missing")
	f(`{"id":"x","title":"x","panels":[{"type":"flowgraph","title":"m","options":{"limit":5}}]}`, `does not take "limit"`)
	f(`{"id":"x","title":"x","panels":[{"type":"topEdges","title":"m","options":{"by":"p75"}}]}`, `by "p75"`)
	f(`{"id":"x","title":"x","panels":[{"type":"errorRates","title":"m","options":{"of":"zones"}}]}`, `of "zones"`)
	f(`{"id":"x","title":"x","panels":[{"type":"alerts","title":"a","query":{"state":"resolved"}}]}`, `query.state "resolved": want pending or firing`)
	f(`{"id":"x","title":"x","panels":[{"type":"alerts","title":"a","query":{"labels":"severity"}}]}`, `query.labels "severity": want name=value pairs`)
	f(`{"id":"x","title":"x","panels":[{"type":"alerts","title":"a","query":{"labels":"team=shop,bad name=x"}}]}`, `(not "bad name=x")`)
	f(`{"id":"x","title":"x","panels":[{"type":"alerts","title":"a","query":{"service":"checkout"}}]}`, `alerts does not take "service"`)
	f(`{"id":"x","title":"x","panels":[{"type":"alerts","title":"a","options":{"by":"p99"}}]}`, `alerts does not take "by"`)
	f(`{"id":"x","title":"x","panels":[{"type":"alerts","title":"a","options":{"limit":5000}}]}`, "limit 5000")
	f(`{"id":"x","title":"x","variables":[{"name":"1a","type":"service"}],"panels":[`+panel+`]}`, `name "1a"`)
	f(`{"id":"x","title":"x","variables":[{"name":"a","type":"service"},{"name":"a","type":"level"}],"panels":[`+panel+`]}`, "defined twice")
	f(`{"id":"x","title":"x","variables":[{"name":"a","type":"color"}],"panels":[`+panel+`]}`, `type "color"`)
	f(`{"id":"x","title":"x","variables":[{"name":"a","type":"custom"}],"panels":[`+panel+`]}`, "needs options")
	f(`{"id":"x","title":"x","variables":[{"name":"a","type":"custom","options":["b"],"default":"c"}],"panels":[`+panel+`]}`, "not among the options")
}

// TestAlertsPanel lists valid alerts panels: all active alerts, or those
// of a rule, a state and labels, which may use variables.
func TestAlertsPanel(t *testing.T) {
	f := func(panel string) {
		t.Helper()
		doc := `{"id":"x","title":"x","variables":[{"name":"service","type":"service"},{"name":"state","type":"custom","options":["firing","pending"]}],"panels":[` + panel + `]}`
		if _, err := Parse([]byte(doc)); err != nil {
			t.Errorf("Parse(%s): %v", panel, err)
		}
	}
	f(`{"type":"alerts","title":"Alerts"}`)
	f(`{"type":"alerts","title":"Alerts","width":12,"height":160,"options":{"limit":20}}`)
	f(`{"type":"alerts","title":"Firing","query":{"rule":"CheckoutSlow <b>","state":"firing"}}`)
	f(`{"type":"alerts","title":"Pending","query":{"state":"pending","labels":"severity=page, team=shop"}}`)
	f(`{"type":"alerts","title":"Of ${service}","query":{"labels":"service=${service}","state":"${state}"}}`)
	f(`{"type":"alerts","title":"Any","query":{"labels":""}}`)
}

// TestLoadDir loads a user directory with good, bad and clashing files:
// the good ones are listed, every bad one is reported, nothing is fatal.
func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, doc string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("mine.json", `{"title":"Mine","panels":[{"type":"nodeTable","title":"t"}]}`)
	write("other.json", `{"id":"zz-other","title":"Other","panels":[{"type":"flowgraph","title":"m"}]}`)
	write("broken.json", `{"title":`)
	write("clash.json", `{"id":"service-overview","title":"Clash","panels":[{"type":"flowgraph","title":"m"}]}`)
	write("Bad Name.json", `{"title":"No id","panels":[{"type":"flowgraph","title":"m"}]}`)
	write("notes.txt", `not a dashboard`)

	entries, errs := All(dir)
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Source+":"+e.ID)
	}
	if got, want := strings.Join(ids, " "), "builtin:architecture-flow builtin:service-overview user:mine user:zz-other"; got != want {
		t.Errorf("entries %q, want %q", got, want)
	}
	bad := map[string]string{}
	for _, e := range errs {
		bad[e.File] = e.Err.Error()
	}
	for file, want := range map[string]string{"broken.json": "decode", "clash.json": "built-in", "Bad Name.json": "id from the file name"} {
		if !strings.Contains(bad[file], want) {
			t.Errorf("%s: error %q, want it to contain %q", file, bad[file], want)
		}
	}
	if len(errs) != 3 {
		t.Errorf("errors %v, want 3", errs)
	}

	if _, errs := All(filepath.Join(dir, "missing")); len(errs) != 1 {
		t.Errorf("missing dir: errors %v, want one", errs)
	}
}
