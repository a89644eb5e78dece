package main

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// sample is one sample of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrapeMetrics reads the collector's /metrics.
func scrapeMetrics(httpAddr string) ([]sample, error) {
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	var out []sample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if s, ok := parseSample(line); ok {
			out = append(out, s)
		}
	}
	return out, sc.Err()
}

// parseSample parses `name{k="v",…} value [timestamp]`. Label values with
// escaped quotes are handled; the self-metrics read here have none.
func parseSample(line string) (sample, bool) {
	s := sample{labels: map[string]string{}}
	rest := line
	if i := strings.IndexAny(line, "{ "); i < 0 {
		return s, false
	} else if line[i] == '{' {
		s.name = line[:i]
		rest = line[i+1:]
		for {
			rest = strings.TrimLeft(rest, ", ")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.Index(rest, `="`)
			if eq < 0 {
				return s, false
			}
			k := rest[:eq]
			rest = rest[eq+2:]
			var v strings.Builder
			j := 0
			for ; j < len(rest) && rest[j] != '"'; j++ {
				if rest[j] == '\\' && j+1 < len(rest) {
					j++
				}
				v.WriteByte(rest[j])
			}
			if j >= len(rest) {
				return s, false
			}
			s.labels[k] = v.String()
			rest = rest[j+1:]
		}
	} else {
		s.name = line[:i]
		rest = line[i:]
	}
	f := strings.Fields(rest)
	if len(f) < 1 {
		return s, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return s, false
	}
	s.value = v
	return s, true
}

// acceptedSpans is the store's count of committed spans,
// flowscope_store_items_total{signal="traces",outcome="accepted"}.
func acceptedSpans(samples []sample) (int64, error) {
	for _, s := range samples {
		if s.name == "flowscope_store_items_total" && s.labels["signal"] == "traces" && s.labels["outcome"] == "accepted" {
			return int64(s.value), nil
		}
	}
	return 0, fmt.Errorf(`no flowscope_store_items_total{signal="traces",outcome="accepted"} sample`)
}

// rollupTiers are the rollup tiers, finest first.
var rollupTiers = []string{"10s", "1m", "1h"}

// RollupResult is the size of the rollup records the collector wrote, from
// flowscope_rollup_bytes_written_total and
// flowscope_rollup_records_written_total.
type RollupResult struct {
	// Reported is false when /metrics had neither counter: no rollup was
	// written yet (a counter vector without samples is not exposed), or a
	// collector without aggregation.
	Reported bool         `json:"reported"`
	Tiers    []RollupTier `json:"tiers"` // 10s, 1m, 1h, then any other tier reported
	Total    RollupTier   `json:"total"`
}

// RollupTier is one tier's records and bytes written.
type RollupTier struct {
	Tier           string   `json:"tier"`
	Records        int64    `json:"records"`
	Bytes          int64    `json:"bytes"`
	BytesPerRecord *float64 `json:"bytes_per_record"` // null without records
}

// rollupSizes extracts the rollup counters (zero when absent).
func rollupSizes(samples []sample) *RollupResult {
	recs, byts := map[string]float64{}, map[string]float64{}
	var order []string
	seen := map[string]bool{}
	found := false
	for _, s := range samples {
		var m map[string]float64
		switch s.name {
		case "flowscope_rollup_records_written_total":
			m = recs
		case "flowscope_rollup_bytes_written_total":
			m = byts
		default:
			continue
		}
		found = true
		t := s.labels["tier"]
		m[t] += s.value
		if !seen[t] {
			seen[t] = true
			order = append(order, t)
		}
	}
	r := &RollupResult{Reported: found, Total: RollupTier{Tier: "total"}}
	add := func(t string) {
		rt := RollupTier{Tier: t, Records: int64(recs[t]), Bytes: int64(byts[t])}
		if rt.Records > 0 {
			b := float64(rt.Bytes) / float64(rt.Records)
			rt.BytesPerRecord = &b
		}
		r.Tiers = append(r.Tiers, rt)
		r.Total.Records += rt.Records
		r.Total.Bytes += rt.Bytes
	}
	for _, t := range rollupTiers {
		add(t)
		seen[t] = false
	}
	for _, t := range order {
		if seen[t] {
			add(t)
		}
	}
	if r.Total.Records > 0 {
		b := float64(r.Total.Bytes) / float64(r.Total.Records)
		r.Total.BytesPerRecord = &b
	}
	return r
}

// rows adds the rollup rows to a result table.
func (r *RollupResult) rows(row func(k, v string)) {
	if r == nil {
		row("rollup bytes per record", "unknown")
		return
	}
	if !r.Reported {
		row("rollup bytes per record", "no rollup records written (flowscope_rollup_*_written_total absent)")
		return
	}
	for _, t := range append(r.Tiers, r.Total) {
		bpr := "n/a"
		if t.BytesPerRecord != nil {
			bpr = fmt.Sprintf("%.0f", *t.BytesPerRecord)
		}
		row("rollup "+t.Tier+": bytes per record", fmt.Sprintf("%s (%d bytes / %d records)", bpr, t.Bytes, t.Records))
	}
}

// sumRollups adds up the rollup records of several runs.
func sumRollups(rs []*RollupResult) *RollupResult {
	var samples []sample
	any := false
	for _, r := range rs {
		if r == nil {
			continue
		}
		any = true
		if !r.Reported {
			continue
		}
		for _, t := range r.Tiers {
			samples = append(samples,
				sample{name: "flowscope_rollup_records_written_total", labels: map[string]string{"tier": t.Tier}, value: float64(t.Records)},
				sample{name: "flowscope_rollup_bytes_written_total", labels: map[string]string{"tier": t.Tier}, value: float64(t.Bytes)})
		}
	}
	if !any {
		return nil
	}
	return rollupSizes(samples)
}
