// Package alerting evaluates alert rules (package alerting/rules) every
// second on the live rollups the flow graph and latency API serve, keeps the
// state of every alert instance, stores each transition in the store's alert
// history, and hands firing and resolved alerts to a notifier (package
// alerting/notify: Alertmanager and webhooks).
//
// # Evaluation
//
// Each cycle reads, for every distinct rule window, the flow graph at the
// service level over [now − window, now] (store.DB.FlowGraph: persisted
// rollups plus the open windows, aligned to whole 10-second windows as the
// API aligns them) and, for rules that select a service or an operation, the
// latency distribution (store.DB.Latency). Values are computed once per
// cycle and shared by every rule that asks for the same signal of the same
// series, so a thousand rules over a large graph cost one graph merge and a
// few comparisons per edge.
//
// A rule's instances are its selection (no `each`) or one per edge, service
// or operation found in the window (`each`). For each instance:
//
//   - fewer spans than min_count: no decision, the state is unchanged;
//   - inactive and breaching: pending (firing at once with for: 0);
//   - pending for `for` and still not recovered: firing;
//   - pending and recovered: inactive;
//   - firing and recovered: inactive (resolved), or after keep_firing_for
//     of continued recovery when the rule sets it.
//
// "Recovered" is past the rule's recover_below/recover_above when it has
// one (hysteresis), not breaching otherwise. An instance whose series has no
// span at all in the window (an edge that vanished) is retired: pending
// becomes inactive, firing resolves.
//
// Every transition is saved with the instance's active state in one store
// transaction per cycle, so pending keeps its start and firing stays firing
// across a restart; a firing instance whose webhook notification was
// delivered is not notified again after a restart.
//
// The synthetic and policy signals (synthetic_failure_rate, synthetic_p99,
// policy_violations) are evaluated by an ExtraSignals source when one is
// configured (Options.Extra); without one their rules report the error
// "no source for signal".
package alerting
