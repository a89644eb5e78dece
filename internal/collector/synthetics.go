package collector

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/config"
	"github.com/flowscope/flowscope/query"
	"github.com/flowscope/flowscope/store"
	"github.com/flowscope/flowscope/synthetics"
)

// startProber creates the synthetic-check prober when a checks file is
// configured, loading and validating the checks; it starts running them
// with the servers.
func (c *Collector) startProber(cfg config.Config, reg prometheus.Registerer) error {
	if cfg.Synthetics.Checks == "" {
		return nil
	}
	var writer synthetics.SpanWriter = c.DB
	if cfg.Synthetics.ExportURL != "" {
		writer = synthetics.NewOTLPWriter(cfg.Synthetics.ExportURL, nil)
	}
	p, err := synthetics.New(synthetics.Options{
		Path: cfg.Synthetics.Checks, Writer: writer, Runs: c.DB,
		CorrelationHeader: cfg.Synthetics.CorrelationHeader, MaxConcurrent: cfg.Synthetics.MaxConcurrent,
		Logger: c.logger, Registerer: reg,
	})
	if err != nil {
		return fmt.Errorf("synthetic checks: %w", err)
	}
	c.Prober = p
	return nil
}

// stopProber stops scheduling checks and waits, until ctx ends, for the
// runs in progress, whose results and spans are then stored.
func (c *Collector) stopProber(ctx context.Context) {
	if c.Prober == nil {
		return
	}
	if err := c.Prober.Stop(ctx); err != nil {
		c.logger.Warn("synthetic runs still in progress at shutdown", "err", err)
	}
	c.Prober = nil
}

// ReloadSynthetics rereads the synthetic checks (what SIGHUP does). A check
// set that does not load keeps the checks in use and the error says why.
func (c *Collector) ReloadSynthetics(ctx context.Context) error {
	if c.Prober == nil {
		return synthetics.ErrNoChecksPath
	}
	return c.Prober.Reload(ctx)
}

// reloadAll is SIGHUP: it rereads the TLS certificate, the token files,
// and the alert rules, synthetic checks and flow policies that are
// configured. Failures
// are logged (and reported by the API) and keep what is in use.
func (c *Collector) reloadAll(ctx context.Context) {
	c.guard.reload()
	if c.cfg.Alerting.Rules != "" {
		_ = c.ReloadRules(ctx) // logged, and reported by /api/v1/rules
	}
	if c.Prober != nil {
		_ = c.ReloadSynthetics(ctx) // logged, and reported by /api/v1/synthetics
	}
	if c.Policies != nil {
		_ = c.ReloadPolicies(ctx) // logged, and reported by /api/v1/policies
	}
	if c.peers != nil {
		if err := c.peers.Refresh(ctx); err != nil {
			c.logger.Warn("refresh peers", "err", err)
		}
	}
}

// proberStatus adapts the prober to query.Synthetics.
type proberStatus struct{ p *synthetics.Prober }

var _ query.Synthetics = proberStatus{}

func (a proberStatus) SyntheticsStatus() query.SyntheticsStatus {
	st := a.p.Status()
	out := query.SyntheticsStatus{Path: st.Path, LoadedAt: st.LoadedAt, LastReloadAt: st.LastReloadAt, LastReloadError: st.LastReloadError}
	for _, ch := range st.Checks {
		info := query.SyntheticCheckInfo{
			Name: ch.Name, File: ch.File, Line: ch.Line, Every: ch.Every, Timeout: ch.Timeout,
			Retries: ch.Retries, Labels: ch.Labels, Steps: make([]string, len(ch.Steps)),
		}
		for i, s := range ch.Steps {
			info.Steps[i] = s.Name
		}
		out.Checks = append(out.Checks, info)
	}
	return out
}

func (a proberStatus) RunNow(ctx context.Context, name string) (store.SyntheticRun, error) {
	run, err := a.p.RunNow(ctx, name)
	if errors.Is(err, synthetics.ErrUnknownCheck) {
		return run, fmt.Errorf("%w: %q", query.ErrUnknownCheck, name)
	}
	return run, err
}

func (a proberStatus) Reload(ctx context.Context) error { return a.p.Reload(ctx) }
