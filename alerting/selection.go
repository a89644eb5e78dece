package alerting

import "strings"

// selection is what an instance watches: an edge, a service, an operation
// of a service, or a synthetic check.
type selection struct {
	service, operation, source, target, check string
}

// labels returns the selection labels of an instance.
func (s selection) labels() map[string]string {
	m := make(map[string]string, 2)
	for _, kv := range [...][2]string{{"service", s.service}, {"operation", s.operation}, {"source", s.source}, {"target", s.target}, {"check", s.check}} {
		if kv[1] != "" {
			m[kv[0]] = kv[1]
		}
	}
	return m
}

// key is the canonical instance key: the non-empty selection labels,
// name=value, in a fixed order, separated by commas (values are
// %-escaped where they contain ',', '=' or '%').
func (s selection) key() string {
	var b strings.Builder
	for _, kv := range [...][2]string{{"check", s.check}, {"service", s.service}, {"operation", s.operation}, {"source", s.source}, {"target", s.target}} {
		if kv[1] == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[0])
		b.WriteByte('=')
		b.WriteString(keyEscaper.Replace(kv[1]))
	}
	return b.String()
}

var keyEscaper = strings.NewReplacer("%", "%25", ",", "%2C", "=", "%3D")

// display is the display name: the node, "source → target", the check.
func (s selection) display() string {
	switch {
	case s.source != "" || s.target != "":
		return s.source + " → " + s.target
	case s.check != "":
		return s.check
	case s.operation != "":
		return s.service + " " + s.operation
	}
	return s.service
}

// selectionFromLabels recovers a selection from an instance's labels.
func selectionFromLabels(l map[string]string) selection {
	return selection{service: l["service"], operation: l["operation"], source: l["source"], target: l["target"], check: l["check"]}
}

// nodeMatches reports whether flow-graph node id is the selected name:
// the ID itself, or its name after the namespace ("shop/checkout" matches
// "checkout").
func nodeMatches(id, name string) bool {
	if id == name {
		return true
	}
	i := strings.LastIndexByte(id, '/')
	return i >= 0 && id[i+1:] == name
}

// instanceLabels builds alertname, the rule's labels and the selection.
func instanceLabels(alert string, ruleLabels map[string]string, sel map[string]string) map[string]string {
	m := make(map[string]string, 1+len(ruleLabels)+len(sel))
	for k, v := range ruleLabels {
		m[k] = v
	}
	for k, v := range sel {
		m[k] = v
	}
	m["alertname"] = alert
	return m
}
