package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/flowscope/flowscope/dashboards"
)

// dashboardHandler serves the dashboard definitions: the built-in ones and
// those of dir, read again on every request so that edited files show up
// without a restart (they are small, and listed only when the UI opens
// the dashboards view).
type dashboardHandler struct{ dir string }

// dashboardSummary is one row of GET /api/v1/dashboards.
type dashboardSummary struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Source      string `json:"source"`
	Panels      int    `json:"panels"`
}

// list answers {"dashboards": [summary…], "errors": [{file, error}…]}: the
// user files that were left out and why.
func (h dashboardHandler) list(w http.ResponseWriter, _ *http.Request) {
	entries, errs := dashboards.All(h.dir)
	out := struct {
		Dashboards []dashboardSummary     `json:"dashboards"`
		Errors     []dashboards.FileError `json:"errors"`
	}{Dashboards: []dashboardSummary{}, Errors: errs}
	if out.Errors == nil {
		out.Errors = []dashboards.FileError{}
	}
	for _, e := range entries {
		out.Dashboards = append(out.Dashboards, dashboardSummary{ID: e.ID, Title: e.Title, Description: e.Description, Source: e.Source, Panels: len(e.Panels)})
	}
	writeJSON(w, http.StatusOK, out)
}

// get answers one dashboard: its definition plus "source".
func (h dashboardHandler) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	entries, _ := dashboards.All(h.dir)
	i := slices.IndexFunc(entries, func(e dashboards.Entry) bool { return e.ID == id })
	if i < 0 {
		writeJSON(w, http.StatusNotFound, apiError{Code: http.StatusNotFound, Message: fmt.Sprintf("dashboard %q not found", id)})
		return
	}
	writeJSON(w, http.StatusOK, entries[i])
}

// apiError is the error body of the query API: {"code", "message"}.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"code":500,"message":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(b)
}
