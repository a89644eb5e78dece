package alerting

import (
	"maps"

	"github.com/flowscope/flowscope/alerting/rules"
)

// annotate expands the rule's annotations for an instance (templates over
// .Value and .Threshold, which print in the signal's unit, .Labels and
// .Target; see rules.Rule.ExpandAnnotations) and adds "exemplar", a UI
// link to its first exemplar trace. A template that fails to execute reads
// "<error expanding template: …>", so that the notification still goes
// out.
func (e *Engine) annotate(r *rules.Rule, in *instance) map[string]string {
	u := r.Signal.Unit()
	out, err := r.ExpandAnnotations(rules.TemplateData{
		Value:     rules.Quantity{V: in.value, Unit: u},
		Threshold: rules.Quantity{V: r.Threshold, Unit: u},
		Labels:    maps.Clone(in.labels),
		Target:    in.target,
	})
	if err != nil {
		e.logger.Warn("alert annotation template failed", "rule", r.Name, "err", err)
	}
	if len(in.exemplars) > 0 {
		out["exemplar"] = e.traceURL(in.exemplars[0])
	}
	return out
}
