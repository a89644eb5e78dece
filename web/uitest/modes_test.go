package uitest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestLatencyModes seeds a bimodal service (cache hits around 4 ms,
// misses around 120 ms, some failing calls) and checks that the latency
// view lists both modes, each with an exemplar span inside its range, and
// the failing spans; that the exemplar links open the trace at that span;
// and the same through the API.
func TestLatencyModes(t *testing.T) {
	s := startCollector(t)
	const svc = "modesvc"
	now := time.Now().Add(-2 * time.Minute)
	var spans []span
	type seeded struct {
		dur    time.Duration // server span
		failed bool
	}
	bySpan := map[string]seeded{} // server span ID (hex) → what it is
	for i := 0; i < 60; i++ {
		c := time.Duration(4000+37*(i%11)) * time.Microsecond // hit
		if i%3 == 2 {
			c = time.Duration(120+i%7) * time.Millisecond // miss
		}
		failed := i%10 == 4
		sp := call("modefront", svc, "GET /item", "GET /item", now.Add(time.Duration(i)*time.Second), c, failed)
		spans = append(spans, sp...)
		bySpan[hex.EncodeToString(sp[1].spanID)] = seeded{sp[1].dur, failed}
	}
	s.postTraces(t, spans)

	type exemplar struct {
		TraceID string  `json:"traceId"`
		SpanID  string  `json:"spanId"`
		Value   float64 `json:"value"`
		Error   bool    `json:"error"`
	}
	var lat struct {
		TimedCount json.Number `json:"timedCount"`
		Modes      []struct {
			Peak, From, To, Count, Share float64
			Exemplar                     *exemplar
		} `json:"modes"`
		ErrorExemplars []exemplar `json:"errorExemplars"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		s.getJSON(t, "/api/v1/latency?service="+svc, &lat)
		if n, _ := lat.TimedCount.Int64(); n == 60 || time.Now().After(deadline) {
			if n != 60 {
				t.Fatalf("timedCount %s, want 60", lat.TimedCount)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// API: two modes, the hits (40) and the misses (20), each with an
	// exemplar of a seeded span in its range; failing exemplars are
	// failing seeded spans.
	if len(lat.Modes) != 2 {
		t.Fatalf("modes %+v, want 2", lat.Modes)
	}
	for i, want := range []struct {
		count  float64
		lo, hi time.Duration
	}{{40, 3 * time.Millisecond, 5 * time.Millisecond}, {20, 100 * time.Millisecond, 130 * time.Millisecond}} {
		m := lat.Modes[i]
		if m.Count != want.count || m.Peak < float64(want.lo) || m.Peak > float64(want.hi) {
			t.Errorf("mode %d: %+v, want %v spans peaking in [%v, %v]", i, m, want.count, want.lo, want.hi)
		}
		if m.Exemplar == nil {
			t.Errorf("mode %d has no exemplar", i)
			continue
		}
		sd, ok := bySpan[m.Exemplar.SpanID]
		if !ok || float64(sd.dur) < m.From || float64(sd.dur) > m.To || sd.failed {
			t.Errorf("mode %d exemplar %+v: seeded %+v (found %v), want a successful span in [%v, %v]", i, m.Exemplar, sd, ok, m.From, m.To)
		}
	}
	if len(lat.ErrorExemplars) == 0 {
		t.Fatal("no failing exemplar")
	}
	for _, e := range lat.ErrorExemplars {
		if sd, ok := bySpan[e.SpanID]; !ok || !sd.failed || !e.Error {
			t.Errorf("failing exemplar %+v is not a failing seeded span (%+v)", e, sd)
		}
	}

	// UI: the same, with links that open the trace at the span.
	b := newTab(t, s.base)
	b.open("latency?service=" + svc)
	b.wait(`document.querySelectorAll('[data-testid=mode-row]').length === 2 && document.querySelector('[data-testid=error-exemplar]')`, 15*time.Second, "the modes and failing spans")
	type row struct {
		Peak, From, To float64
		Href, Span     string
	}
	rows := eval[[]row](b, `[...document.querySelectorAll('[data-testid=mode-row]')].map(r => { const a = r.querySelector('[data-testid=mode-exemplar]');
		return {peak: +r.dataset.peak, from: +r.dataset.from, to: +r.dataset.to, href: a ? a.getAttribute('href') : '', span: a ? a.dataset.spanId : ''}; })`)
	for i, r := range rows {
		if r.Peak != lat.Modes[i].Peak || r.Span != lat.Modes[i].Exemplar.SpanID || !strings.Contains(r.Href, "span="+r.Span) {
			t.Errorf("mode row %d: %+v, API %+v", i, r, lat.Modes[i])
		}
	}
	errHref := eval[string](b, `document.querySelector('[data-testid=error-exemplar]').getAttribute('href')`)
	if !strings.Contains(errHref, "span="+lat.ErrorExemplars[0].SpanID) {
		t.Errorf("failing exemplar link %q, want span %s", errHref, lat.ErrorExemplars[0].SpanID)
	}
	if n := eval[int](b, `document.querySelectorAll('[data-testid=error-exemplars] [data-testid=exemplar-error]').length`); n != len(lat.ErrorExemplars) {
		t.Errorf("%d error badges among the failing spans, want %d", n, len(lat.ErrorExemplars))
	}
	b.shot("latency-modes")

	// The miss mode's exemplar opens its trace with that span selected.
	want := lat.Modes[1].Exemplar
	b.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-testid=mode-exemplar][data-span-id="%s"]`, want.SpanID))))
	b.wait(fmt.Sprintf(`document.body.dataset.view === 'trace' && document.querySelector('[data-testid=span-row].selected[data-span-id="%s"]')`, want.SpanID), 15*time.Second, "the trace at the mode's span")
	if p := eval[map[string]string](b, `__flowscope.route().params`); p["span"] != want.SpanID {
		t.Errorf("trace route params %v, want span %s", p, want.SpanID)
	}
	if v := eval[string](b, `document.querySelector('[data-testid=span-details]').textContent`); !strings.Contains(v, want.SpanID) {
		t.Errorf("span details do not show span %s", want.SpanID)
	}
	b.checkClean()
}
