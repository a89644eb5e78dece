package fanout

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// peerMetrics are the front end's self-metrics about its peers.
type peerMetrics struct {
	duration *prometheus.HistogramVec
	failures *prometheus.CounterVec
	up       *prometheus.GaugeVec
}

func newPeerMetrics(reg prometheus.Registerer) *peerMetrics {
	if reg == nil {
		return nil
	}
	m := &peerMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flowscope_peer_request_duration_seconds",
			Help:    "Time a peer took to answer one query of the front end, by peer and peer API method.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}, []string{"peer", "method"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowscope_peer_failures_total",
			Help: "Queries a peer did not answer (timeout, refused connection, error status); each left the peer out of an answer.",
		}, []string{"peer"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flowscope_peer_up",
			Help: "1 when the peer answered the front end's latest query to it, 0 when it did not.",
		}, []string{"peer"}),
	}
	reg.MustRegister(m.duration, m.failures, m.up)
	return m
}

func (m *peerMetrics) observe(peer, method string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(peer, method).Observe(d.Seconds())
	if err != nil {
		m.failures.WithLabelValues(peer).Inc()
		m.up.WithLabelValues(peer).Set(0)
		return
	}
	m.up.WithLabelValues(peer).Set(1)
}
