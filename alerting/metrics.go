package alerting

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/store"
)

// Metrics are the engine's self-metrics. A nil *Metrics records nothing.
type Metrics struct {
	duration     prometheus.Histogram
	rules        prometheus.Gauge
	ruleFailures prometheus.Counter
	transitions  *prometheus.CounterVec
	reloads      *prometheus.CounterVec
	reloadOK     prometheus.Gauge
	saveFailures prometheus.Counter
	active       *prometheus.GaugeVec
	lastCycle    prometheus.Gauge
}

// NewMetrics registers the engine's self-metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flowscope_alert_evaluation_duration_seconds",
			Help:    "Duration of one evaluation cycle of every alert rule.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		rules: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flowscope_alert_rules", Help: "Alert rules loaded.",
		}),
		ruleFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowscope_alert_rule_evaluation_failures_total", Help: "Rule evaluations that failed (the rule's lastError says why).",
		}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowscope_alert_transitions_total", Help: "Alert instance state transitions, by the state entered.",
		}, []string{"to"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowscope_alert_rules_reloads_total", Help: "Rule reloads (SIGHUP, POST /api/v1/rules:reload), by result.",
		}, []string{"result"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flowscope_alert_rules_last_reload_successful", Help: "1 when the last rule reload succeeded (or none was tried), 0 when it failed and the previous rules are kept.",
		}),
		saveFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowscope_alert_state_save_failures_total", Help: "Cycles whose alert state and history could not be saved (retried the next cycle).",
		}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flowscope_alerts", Help: "Active alert instances, by state.",
		}, []string{"state"}),
		lastCycle: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flowscope_alert_last_evaluation_timestamp_seconds", Help: "Unix time of the end of the last evaluation cycle.",
		}),
	}
	m.reloadOK.Set(1)
	reg.MustRegister(m.duration, m.rules, m.ruleFailures, m.transitions, m.reloads, m.reloadOK, m.saveFailures, m.active, m.lastCycle)
	return m
}

func (m *Metrics) setRules(n int) {
	if m != nil {
		m.rules.Set(float64(n))
	}
}

func (m *Metrics) reloaded(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.reloadOK.Set(1)
	} else {
		m.reloads.WithLabelValues("failure").Inc()
		m.reloadOK.Set(0)
	}
}

func (m *Metrics) ruleFailed() {
	if m != nil {
		m.ruleFailures.Inc()
	}
}

func (m *Metrics) saveFailed() {
	if m != nil {
		m.saveFailures.Inc()
	}
}

func (m *Metrics) transition(to string) {
	if m != nil {
		m.transitions.WithLabelValues(to).Inc()
	}
}

// observeCycle records a cycle's duration and the active instances.
func (m *Metrics) observeCycle(d time.Duration, e *Engine) {
	if m == nil {
		return
	}
	m.duration.Observe(d.Seconds())
	m.lastCycle.Set(float64(time.Now().UnixNano()) / 1e9)
	var pending, firing int
	e.mu.Lock()
	for _, rs := range e.set {
		for _, in := range rs.active {
			if in.state == store.AlertFiring {
				firing++
			} else {
				pending++
			}
		}
	}
	e.mu.Unlock()
	m.active.WithLabelValues(store.AlertPending).Set(float64(pending))
	m.active.WithLabelValues(store.AlertFiring).Set(float64(firing))
}
