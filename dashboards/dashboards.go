// Package dashboards holds the declarative dashboards shipped with Flowscope
// (the *.json files of this directory, embedded into the binary) and loads,
// validates and lists them together with a user's own dashboard directory.
//
// # Schema
//
// A dashboard is one JSON document: an id, a title, optional variables
// (choices shown above the panels, substituted into panel queries as
// ${name}) and a list of panels, each bound to a query of the REST API
// (query/API.md). The schema, the panel types and the query parameters each
// panel type accepts are documented in README.md and docs/dashboards.md.
// Parse rejects unknown members, unknown panel types, query parameters a
// panel type does not take and references to undefined variables, so a
// typo is reported rather than silently ignored.
//
// # Sources
//
// Builtin returns the embedded dashboards; LoadDir reads a directory of the
// user's own (*.json, not recursive). All combines both: built-in first, then
// the user's sorted by id; a user dashboard that fails validation or reuses
// an id is reported as a FileError and left out, never fatal.
package dashboards

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

//go:embed *.json
var builtinFS embed.FS

// Sources of a dashboard.
const (
	SourceBuiltin = "builtin"
	SourceUser    = "user"
)

// Dashboard is one dashboard definition.
type Dashboard struct {
	// ID names the dashboard in URLs (#/dashboard/ID): lowercase letters,
	// digits, '.', '_' and '-', at most 64. Empty in a file means the file
	// name without ".json".
	ID string `json:"id"`
	// Title is shown in the list and above the panels. Required.
	Title string `json:"title"`
	// Description is a line of text under the title.
	Description string `json:"description,omitempty"`
	// Range is the default time range: 5m, 15m, 1h, 6h or 24h (default 15m).
	Range string `json:"range,omitempty"`
	// Refresh is how often the panels reload while the range is relative, a
	// Go duration of at least 1s; "" or "0s" means no automatic refresh.
	Refresh string `json:"refresh,omitempty"`
	// Variables are choices shown above the panels.
	Variables []Variable `json:"variables,omitempty"`
	// Panels are drawn in order on a 12-column grid. At least one.
	Panels []Panel `json:"panels"`
}

// Variable is a choice shown above the panels; panel query values refer to
// it as ${name}.
type Variable struct {
	// Name is an identifier ([A-Za-z_][A-Za-z0-9_]*).
	Name string `json:"name"`
	// Label is shown next to the choice (default: Name).
	Label string `json:"label,omitempty"`
	// Type says where the choices come from: "service" (GET /services),
	// "architecture" (GET /architectures, plus "none"), "level" (service,
	// instance, zone, region, namespace) or "custom" (Options).
	Type string `json:"type"`
	// Options are the choices of a custom variable.
	Options []string `json:"options,omitempty"`
	// Default is the initial choice; empty means the first one.
	Default string `json:"default,omitempty"`
}

// Panel is one panel of a dashboard.
type Panel struct {
	// Type is one of the PanelTypes keys.
	Type string `json:"type"`
	// Title is shown above the panel. Required.
	Title string `json:"title"`
	// Width is the panel's width in columns of a 12-column grid (default 6).
	Width int `json:"width,omitempty"`
	// Height is the panel's height in pixels, 120–1200 (default 300).
	Height int `json:"height,omitempty"`
	// Query holds the API parameters; which ones a type takes is listed in
	// PanelTypes. Values may contain ${variable}.
	Query map[string]string `json:"query,omitempty"`
	// Options tune the presentation.
	Options *PanelOptions `json:"options,omitempty"`
}

// PanelOptions tune how a panel presents its data.
type PanelOptions struct {
	// By orders topEdges and nodeTable rows: p50, p90, p99, p999, rate,
	// calls (edges only), errorRate. Default p99.
	By string `json:"by,omitempty"`
	// Limit caps the rows of topEdges, errorRates, nodeTable and alerts,
	// 1–1000 (default 10).
	Limit int `json:"limit,omitempty"`
	// Of chooses nodes or edges for errorRates (default edges).
	Of string `json:"of,omitempty"`
	// ThresholdMs colours flowgraph edges whose p99 exceeds it (default: none).
	ThresholdMs float64 `json:"thresholdMs,omitempty"`
}

// PanelType describes one panel type: the API it reads and the query
// parameters it accepts.
type PanelType struct {
	// API is the endpoint the panel reads, relative to /api/v1.
	API string
	// Params are the accepted query parameters.
	Params []string
	// Options are the accepted PanelOptions members (JSON names).
	Options []string
}

// PanelTypes are the panel types a dashboard may use.
var PanelTypes = map[string]PanelType{
	"flowgraph":      {API: "/flowgraph", Params: []string{"level", "operation", "compare"}, Options: []string{"thresholdMs"}},
	"distribution":   {API: "/latency", Params: latencyParams, Options: nil},
	"quantileSeries": {API: "/latency", Params: append(slices.Clone(latencyParams), "step"), Options: nil},
	"topEdges":       {API: "/flowgraph", Params: []string{"level", "operation"}, Options: []string{"by", "limit"}},
	"errorRates":     {API: "/flowgraph", Params: []string{"level", "operation"}, Options: []string{"of", "limit"}},
	"nodeTable":      {API: "/flowgraph", Params: []string{"level", "operation"}, Options: []string{"by", "limit"}},
	"metric":         {API: "/metrics/{name}", Params: []string{"name", "quantiles"}, Options: nil},
	// alerts lists the active alerts: of one rule, in one state (pending or
	// firing), and with the labels "name=value,…" (all must match).
	"alerts": {API: "/alerts", Params: []string{"rule", "state", "labels"}, Options: []string{"limit"}},
}

var latencyParams = []string{"service", "operation", "kind", "source", "target", "level", "quantiles"}

// Ranges are the accepted values of Dashboard.Range.
var Ranges = []string{"5m", "15m", "1h", "6h", "24h"}

var (
	idRE       = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	varNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	varRefRE   = regexp.MustCompile(`\$\{([^}]*)\}`)
	labelRE    = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	alertState = []string{"pending", "firing"}
	levels     = []string{"service", "instance", "zone", "region", "namespace"}
	varTypes   = []string{"service", "architecture", "level", "custom"}
	byValues   = []string{"p50", "p90", "p99", "p999", "rate", "calls", "errorRate"}
	maxFileLen = int64(1 << 20)
)

// Parse decodes and validates one dashboard. Unknown members are errors.
// An empty id is left empty (LoadDir fills it from the file name).
func Parse(data []byte) (*Dashboard, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var d Dashboard
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("decode: data after the dashboard object")
	}
	if err := d.validate(d.ID == ""); err != nil {
		return nil, err
	}
	return &d, nil
}

// Validate checks a dashboard against the schema and returns every problem
// found, joined.
func (d *Dashboard) Validate() error { return d.validate(false) }

func (d *Dashboard) validate(allowEmptyID bool) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !(allowEmptyID && d.ID == "") && !idRE.MatchString(d.ID) {
		bad("id %q: want lowercase letters, digits, '.', '_' or '-' (at most 64)", d.ID)
	}
	if strings.TrimSpace(d.Title) == "" {
		bad("title: missing")
	}
	if d.Range != "" && !slices.Contains(Ranges, d.Range) {
		bad("range %q: want one of %s", d.Range, strings.Join(Ranges, ", "))
	}
	if d.Refresh != "" {
		if r, err := time.ParseDuration(d.Refresh); err != nil || (r != 0 && r < time.Second) {
			bad("refresh %q: want a duration of at least 1s, or 0s", d.Refresh)
		}
	}
	vars := map[string]bool{}
	for i, v := range d.Variables {
		at := fmt.Sprintf("variables[%d]", i)
		if !varNameRE.MatchString(v.Name) {
			bad("%s.name %q: want an identifier", at, v.Name)
		} else if vars[v.Name] {
			bad("%s.name %q: defined twice", at, v.Name)
		}
		vars[v.Name] = true
		if !slices.Contains(varTypes, v.Type) {
			bad("%s.type %q: want one of %s", at, v.Type, strings.Join(varTypes, ", "))
		}
		if v.Type == "custom" && len(v.Options) == 0 {
			bad("%s.options: a custom variable needs options", at)
		}
		if v.Type != "custom" && len(v.Options) > 0 {
			bad("%s.options: only a custom variable takes options", at)
		}
		if v.Type == "level" && v.Default != "" && !slices.Contains(levels, v.Default) {
			bad("%s.default %q: want one of %s", at, v.Default, strings.Join(levels, ", "))
		}
		if v.Type == "custom" && v.Default != "" && !slices.Contains(v.Options, v.Default) {
			bad("%s.default %q: not among the options", at, v.Default)
		}
	}
	if len(d.Panels) == 0 {
		bad("panels: at least one panel is required")
	}
	for i, p := range d.Panels {
		at := fmt.Sprintf("panels[%d]", i)
		pt, ok := PanelTypes[p.Type]
		if !ok {
			bad("%s.type %q: want one of %s", at, p.Type, strings.Join(sortedKeys(PanelTypes), ", "))
			continue
		}
		if strings.TrimSpace(p.Title) == "" {
			bad("%s.title: missing", at)
		}
		if p.Width < 0 || p.Width > 12 {
			bad("%s.width %d: want 1–12 columns", at, p.Width)
		}
		if p.Height != 0 && (p.Height < 120 || p.Height > 1200) {
			bad("%s.height %d: want 120–1200 pixels", at, p.Height)
		}
		for _, k := range sortedKeys(p.Query) {
			val := p.Query[k]
			if !slices.Contains(pt.Params, k) {
				bad("%s.query: %s does not take %q (it takes %s)", at, p.Type, k, strings.Join(pt.Params, ", "))
			}
			for _, m := range varRefRE.FindAllStringSubmatch(val, -1) {
				if !vars[m[1]] {
					bad("%s.query.%s: undefined variable ${%s}", at, k, m[1])
				}
			}
			if k == "level" && !varRefRE.MatchString(val) && !slices.Contains(levels, val) {
				bad("%s.query.level %q: want one of %s", at, val, strings.Join(levels, ", "))
			}
		}
		q := p.Query
		switch p.Type {
		case "distribution", "quantileSeries":
			hasSvc, hasEdge := q["service"] != "", q["source"] != "" || q["target"] != ""
			switch {
			case hasSvc == hasEdge:
				bad("%s.query: give either service, or source and target", at)
			case hasEdge && (q["source"] == "" || q["target"] == ""):
				bad("%s.query: an edge needs both source and target", at)
			}
		case "metric":
			if q["name"] == "" {
				bad("%s.query.name: missing", at)
			}
		case "alerts":
			if st := q["state"]; st != "" && !varRefRE.MatchString(st) && !slices.Contains(alertState, st) {
				bad("%s.query.state %q: want pending or firing", at, st)
			}
			if msg := checkLabelMatchers(q["labels"]); msg != "" {
				bad("%s.query.labels %q: %s", at, q["labels"], msg)
			}
		}
		if o := p.Options; o != nil {
			allowed := func(name string, set bool) {
				if set && !slices.Contains(pt.Options, name) {
					bad("%s.options: %s does not take %q", at, p.Type, name)
				}
			}
			allowed("by", o.By != "")
			allowed("limit", o.Limit != 0)
			allowed("of", o.Of != "")
			allowed("thresholdMs", o.ThresholdMs != 0)
			if o.By != "" && !slices.Contains(byValues, o.By) {
				bad("%s.options.by %q: want one of %s", at, o.By, strings.Join(byValues, ", "))
			}
			if o.Limit < 0 || o.Limit > 1000 {
				bad("%s.options.limit %d: want 1–1000", at, o.Limit)
			}
			if o.Of != "" && o.Of != "nodes" && o.Of != "edges" {
				bad("%s.options.of %q: want nodes or edges", at, o.Of)
			}
			if o.ThresholdMs < 0 {
				bad("%s.options.thresholdMs %v: must not be negative", at, o.ThresholdMs)
			}
		}
	}
	return errors.Join(errs...)
}

// checkLabelMatchers checks an alerts panel's labels: "name=value" pairs
// separated by commas, names as alert labels have them; "" is fine.
func checkLabelMatchers(s string) string {
	if strings.TrimSpace(s) == "" {
		return ""
	}
	for _, m := range strings.Split(s, ",") {
		name, _, ok := strings.Cut(strings.TrimSpace(m), "=")
		if name = strings.TrimSpace(name); !ok || !labelRE.MatchString(name) {
			return fmt.Sprintf("want name=value pairs separated by commas, names of letters, digits and '_' (not %q)", strings.TrimSpace(m))
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Entry is a loaded dashboard and where it came from.
type Entry struct {
	*Dashboard
	// Source is SourceBuiltin or SourceUser.
	Source string `json:"source"`
	// File is the file it was read from (base name).
	File string `json:"-"`
}

// FileError reports a dashboard file that was left out.
type FileError struct {
	File string `json:"file"`
	Err  error  `json:"-"`
}

func (e FileError) Error() string { return e.File + ": " + e.Err.Error() }

// MarshalJSON writes {"file": …, "error": …}.
func (e FileError) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		File  string `json:"file"`
		Error string `json:"error"`
	}{e.File, e.Err.Error()})
}

var builtin = sync.OnceValues(func() ([]Entry, error) {
	entries, errs := loadFS(builtinFS, ".", SourceBuiltin)
	if len(errs) > 0 {
		out := make([]error, len(errs))
		for i, e := range errs {
			out[i] = e
		}
		return nil, errors.Join(out...)
	}
	return entries, nil
})

// Builtin returns the dashboards shipped in this directory, sorted by id.
// The returned entries are shared: callers must not modify them.
func Builtin() ([]Entry, error) { return builtin() }

// LoadDir reads the user's dashboards from dir (*.json, not recursive),
// sorted by id. Files that cannot be read or fail validation are reported
// in errs and left out.
func LoadDir(dir string) (entries []Entry, errs []FileError) {
	return loadFS(os.DirFS(dir), ".", SourceUser)
}

func loadFS(fsys fs.FS, dir, source string) ([]Entry, []FileError) {
	names, err := fs.Glob(fsys, filepath.ToSlash(filepath.Join(dir, "*.json")))
	if err != nil {
		return nil, []FileError{{File: dir, Err: err}}
	}
	if len(names) == 0 {
		if _, err := fs.Stat(fsys, dir); err != nil {
			return nil, []FileError{{File: dir, Err: err}}
		}
	}
	slices.Sort(names)
	var entries []Entry
	var errs []FileError
	seen := map[string]string{}
	for _, name := range names {
		base := filepath.Base(name)
		d, err := readOne(fsys, name)
		if err == nil && d.ID == "" {
			d.ID = strings.TrimSuffix(base, ".json")
			if !idRE.MatchString(d.ID) {
				err = fmt.Errorf("id from the file name %q: want lowercase letters, digits, '.', '_' or '-'; set \"id\"", d.ID)
			}
		}
		if err == nil && seen[d.ID] != "" {
			err = fmt.Errorf("id %q already used by %s", d.ID, seen[d.ID])
		}
		if err != nil {
			errs = append(errs, FileError{File: base, Err: err})
			continue
		}
		seen[d.ID] = base
		entries = append(entries, Entry{Dashboard: d, Source: source, File: base})
	}
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.ID, b.ID) })
	return entries, errs
}

func readOne(fsys fs.FS, name string) (*Dashboard, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileLen+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > maxFileLen {
		return nil, fmt.Errorf("larger than %d bytes", maxFileLen)
	}
	return Parse(data)
}

// All returns the built-in dashboards followed by the user's from dir
// (empty dir: none). A user dashboard whose id is already taken by a
// built-in one is reported in errs and left out.
func All(dir string) (entries []Entry, errs []FileError) {
	b, err := Builtin()
	if err != nil {
		errs = append(errs, FileError{File: "builtin", Err: err})
	}
	entries = append(entries, b...)
	if dir == "" {
		return entries, errs
	}
	user, uerrs := LoadDir(dir)
	errs = append(errs, uerrs...)
	for _, u := range user {
		if slices.ContainsFunc(b, func(e Entry) bool { return e.ID == u.ID }) {
			errs = append(errs, FileError{File: u.File, Err: fmt.Errorf("id %q is a built-in dashboard's", u.ID)})
			continue
		}
		entries = append(entries, u)
	}
	return entries, errs
}
