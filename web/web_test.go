package web

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRoutes(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "flowscope_test_total", Help: "t"})
	reg.MustRegister(c)
	c.Add(3)
	var notReady error
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("api:" + r.URL.Path)) })
	srv := httptest.NewServer(NewHandler(Options{API: api, Gatherer: reg, Ready: func() error { return notReady }}))
	defer srv.Close()
	get := func(path string) (int, http.Header, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	cases := []struct {
		path, contains string
		code           int
	}{
		{"/healthz", "ok", 200},
		{"/readyz", "ready", 200},
		{"/metrics", "flowscope_test_total 3", 200},
		{"/api/v1/services", "api:/api/v1/services", 200},
		{"/", "<title>Flowscope</title>", 200},
		{"/nope.js", "404", 404},
	}
	for _, tc := range cases {
		code, _, body := get(tc.path)
		if code != tc.code || !strings.Contains(body, tc.contains) {
			t.Errorf("%s: %d %q", tc.path, code, body)
		}
	}
	_, h, _ := get("/")
	if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("UI security headers: %v", h)
	}
	notReady = errors.New("store closed")
	if code, _, body := get("/readyz"); code != 503 || !strings.Contains(body, "store closed") {
		t.Errorf("not ready: %d %q", code, body)
	}
}
