package collector

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/alerting"
	"github.com/flowscope/flowscope/internal/config"
	"github.com/flowscope/flowscope/query"
	"github.com/flowscope/flowscope/query/fanout"
	"github.com/flowscope/flowscope/store"
)

// nodeName is cfg.Node.Name, else the host name, else "flowscope".
func nodeName(cfg config.Config) string {
	if cfg.Node.Name != "" {
		return cfg.Node.Name
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "flowscope"
}

// registerNodeInfo exposes the process's identity as a self-metric.
func registerNodeInfo(reg prometheus.Registerer, node string, frontEnd bool) {
	role := "node"
	if frontEnd {
		role = "query"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "flowscope_node_info",
		Help:        "Always 1: the name (node.name) and role (node, or query for a query front end) of this process.",
		ConstLabels: prometheus.Labels{"node": node, "role": role},
	})
	g.Set(1)
	reg.MustRegister(g)
}

// startPeers resolves the front end's peers, makes its reader the merged
// view of them, and keeps the peer set current.
func (c *Collector) startPeers(ctx context.Context, cfg config.Config, reg prometheus.Registerer) error {
	if len(cfg.Query.Peers) == 0 && cfg.Query.PeersFile == "" {
		return fmt.Errorf("a query front end needs peers: set query.peers (--peers) or query.peers_file (--peers-file)")
	}
	ps, err := fanout.NewPeerSet(ctx, fanout.PeerSetOptions{Peers: cfg.Query.Peers, File: cfg.Query.PeersFile, Logger: c.logger})
	if err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	var token string
	if cfg.Query.PeerTokenFile != "" {
		b, err := os.ReadFile(cfg.Query.PeerTokenFile)
		if err != nil {
			return fmt.Errorf("query.peer_token_file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	c.peers = ps
	c.reader = fanout.New(fanout.Options{Peers: ps, Local: c.DB, Timeout: cfg.Query.PeerTimeout, Token: token,
		Logger: c.logger, Registerer: reg})
	refreshCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	c.stopPeers, c.peersDone = stop, make(chan struct{})
	go func() { defer close(c.peersDone); ps.Run(refreshCtx, cfg.Query.RefreshInterval) }()
	return nil
}

// stopPeerRefresh ends the peer set's refresh loop.
func (c *Collector) stopPeerRefresh() {
	if c.stopPeers != nil {
		c.stopPeers()
		<-c.peersDone
		c.stopPeers = nil
	}
}

// strictSource is the front end's view for the alert engine: a query
// that misses a peer fails (fanout.Strict), so that an evaluation never
// acts on part of the cluster; the engine keeps the rules' states until a
// complete evaluation.
type strictSource struct{ st query.Store }

var _ alerting.Source = strictSource{}

func (s strictSource) FlowGraph(ctx context.Context, start, end time.Time, q aggregate.GraphQuery) (*aggregate.Graph, error) {
	return s.st.FlowGraph(fanout.Strict(ctx), start, end, q)
}

func (s strictSource) Latency(ctx context.Context, start, end time.Time, q aggregate.LatencyQuery) (*aggregate.Latency, error) {
	return s.st.Latency(fanout.Strict(ctx), start, end, q)
}

func (s strictSource) Operations(ctx context.Context, service string) ([]store.Operation, error) {
	return s.st.Operations(fanout.Strict(ctx), service)
}

func (s strictSource) FindTraces(ctx context.Context, q store.TraceQuery) ([]store.TraceSummary, error) {
	return s.st.FindTraces(fanout.Strict(ctx), q)
}
