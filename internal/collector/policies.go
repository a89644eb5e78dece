package collector

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/config"
	"github.com/flowscope/flowscope/policies/monitor"
)

// startPolicies loads the flow policies when a policies file is
// configured; their background evaluation starts with the servers.
func (c *Collector) startPolicies(cfg config.Config, reg prometheus.Registerer) error {
	if cfg.Policies == "" {
		return nil
	}
	rt, err := monitor.New(monitor.Options{Path: cfg.Policies, Store: c.reader, Logger: c.logger, Registerer: reg})
	if err != nil {
		return fmt.Errorf("flow policies: %w", err)
	}
	c.Policies = rt
	return nil
}

// runPolicies starts the background evaluation of the flow policies.
func (c *Collector) runPolicies(ctx context.Context) {
	if c.Policies == nil {
		return
	}
	pctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	c.stopPolicies, c.policiesDone = stop, make(chan struct{})
	go func() { defer close(c.policiesDone); c.Policies.Run(pctx) }()
}

// stopPolicyEvaluation ends the background evaluation of the policies.
func (c *Collector) stopPolicyEvaluation() {
	if c.stopPolicies != nil {
		c.stopPolicies()
		<-c.policiesDone
		c.stopPolicies = nil
	}
}

// ReloadPolicies rereads the flow policies (what SIGHUP does). A file that
// does not load keeps the policies in use and the error says why.
func (c *Collector) ReloadPolicies(ctx context.Context) error {
	if c.Policies == nil {
		return monitor.ErrNoPolicies
	}
	return c.Policies.Reload(ctx)
}
