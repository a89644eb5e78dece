package uitest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/collector"
	"github.com/flowscope/flowscope/internal/config"
)

// TestFrontEndPartialBanner opens the UI of a query front end over two
// nodes, each holding one call: the map shows both; once a node stops,
// the map shows what the other holds under a banner naming the missing
// node.
func TestFrontEndPartialBanner(t *testing.T) {
	nodes := []*server{startCollector(t), startCollector(t)}
	now := time.Now().Add(-time.Minute)
	nodes[0].postTraces(t, call("frontend", "checkout", "POST /checkout", "checkout", now, 20*time.Millisecond, false))
	nodes[1].postTraces(t, call("frontend", "catalog", "GET /catalog", "catalog", now, 10*time.Millisecond, false))
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Receivers.OTLPGRPCAddr, cfg.Receivers.ZipkinAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Query.Peers = []string{nodes[0].base, nodes[1].base}
	cfg.Query.PeerTimeout = 2 * time.Second
	front, err := collector.StartQuery(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		front.Shutdown(ctx)
	})
	b := newTab(t, "http://"+front.Addrs().HTTP)
	b.open("map")
	b.wait(`(s => s && s.nodes.length === 3 && s.edges.length === 2)(__flowscope.mapState())`, 15*time.Second, "the map of both nodes' calls")
	if hidden := eval[bool](b, `document.querySelector('[data-testid=partial-banner]').hidden`); !hidden {
		t.Error("the partial banner shows while every node answers")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nodes[1].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	b.open("map")
	b.wait(`(s => s && s.nodes.length === 2 && s.edges.length === 1)(__flowscope.mapState())`, 15*time.Second, "the map of the remaining node's call")
	b.wait(`!document.querySelector('[data-testid=partial-banner]').hidden && document.querySelector('[data-testid=partial-banner]').innerText.includes('`+nodes[1].base+`')`,
		10*time.Second, "the banner naming the stopped node")
}
