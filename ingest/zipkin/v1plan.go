// Planning a Zipkin v1 span object: which OTLP spans (halves) its cs, sr,
// ms, mr, cr and ss annotations make, and how they nest.

package zipkin

import (
	"slices"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// halfPlan is one OTLP span planned for a v1 span object.
type halfPlan struct {
	kind   tracepb.Span_SpanKind
	ep     *endpoint
	hasEP  bool
	start  int64 // µs
	end    int64 // µs, valid if hasEnd
	hasEnd bool
	parent int // index of the parent half; -1: the v1 span's parent
}

// Roles of v1 annotations in a plan.
const (
	roleEvent int8 = iota
	roleStart
	roleEnd
)

var noEndpoint endpoint

// planV1 walks the annotations of sp in order and plans its OTLP spans
// into d.plan, with the role of every annotation in d.roles (see the
// package documentation, "Zipkin v1"). It returns false if sp has no
// cs/sr/ss/cr/ms/mr annotation (a local span: the caller plans it).
func (d *decoder) planV1(sp *v1Span) bool {
	plan := d.plan[:0]
	roles := slices.Grow(d.roles[:0], len(sp.anns))[:len(sp.anns)]
	clear(roles)
	pending, lastCallee := -1, -1 // unanswered client half, last server half
	tooMany := false
	startCallee := func(i int, kind tracepb.Span_SpanKind) {
		if len(plan) == maxHalves {
			tooMany = true
			return
		}
		a := &sp.anns[i]
		parent := -1
		if pending >= 0 {
			parent = pending
		} else if len(plan) > 0 {
			parent = len(plan) - 1
		}
		plan = append(plan, halfPlan{kind: kind, ep: &a.ep, hasEP: a.hasEP, start: a.ts, parent: parent})
		pending, lastCallee = -1, len(plan)-1
		roles[i] = roleStart
	}
	startCaller := func(i int, kind tracepb.Span_SpanKind) {
		if len(plan) == maxHalves {
			tooMany = true
			return
		}
		a := &sp.anns[i]
		parent := -1
		if lastCallee >= 0 {
			parent = lastCallee
		} else if pending >= 0 {
			parent = plan[pending].parent
		}
		plan = append(plan, halfPlan{kind: kind, ep: &a.ep, hasEP: a.hasEP, start: a.ts, parent: parent})
		pending = len(plan) - 1
		roles[i] = roleStart
	}
	for i := range sp.anns {
		a := &sp.anns[i]
		switch a.value {
		case "cs":
			startCaller(i, tracepb.Span_SPAN_KIND_CLIENT)
		case "ms":
			startCaller(i, tracepb.Span_SPAN_KIND_PRODUCER)
		case "sr":
			startCallee(i, tracepb.Span_SPAN_KIND_SERVER)
		case "mr":
			startCallee(i, tracepb.Span_SPAN_KIND_CONSUMER)
		case "cr":
			if j := matchEnd(plan, tracepb.Span_SPAN_KIND_CLIENT, a); j >= 0 {
				plan[j].end, plan[j].hasEnd = a.ts, true
				roles[i] = roleEnd
			} else if len(plan) == 0 {
				startCaller(i, tracepb.Span_SPAN_KIND_CLIENT) // cr alone: a client of unknown duration
			}
		case "ss":
			if j := matchEnd(plan, tracepb.Span_SPAN_KIND_SERVER, a); j >= 0 {
				plan[j].end, plan[j].hasEnd = a.ts, true
				roles[i] = roleEnd
			} else if !slices.ContainsFunc(plan, func(h halfPlan) bool { return h.kind == tracepb.Span_SPAN_KIND_SERVER }) {
				startCallee(i, tracepb.Span_SPAN_KIND_SERVER) // ss without sr: a server of unknown duration
			}
		}
	}
	d.plan, d.roles, d.tooManyHalves = plan, roles, tooMany
	if len(plan) == 0 {
		return false
	}
	sp.targetHop, sp.callee = 0, false
	for j := len(plan) - 1; j >= 0; j-- {
		if isCallee(plan[j].kind) {
			sp.targetHop, sp.callee = j, true
			break
		}
	}
	sp.isCall, sp.calleeFirst = true, isCallee(plan[0].kind)
	return true
}

// isCallee reports whether k is the kind of a server (consumer) half.
func isCallee(k tracepb.Span_SpanKind) bool {
	return k == tracepb.Span_SPAN_KIND_SERVER || k == tracepb.Span_SPAN_KIND_CONSUMER
}

// matchEnd returns the half an end annotation a (cr or ss) closes: the
// latest open half of kind that started at or before a, preferring one in
// a's service; -1 if none.
func matchEnd(plan []halfPlan, kind tracepb.Span_SpanKind, a *v1Annotation) int {
	best := -1
	for j := len(plan) - 1; j >= 0; j-- {
		h := &plan[j]
		if h.kind != kind || h.hasEnd || h.start > a.ts {
			continue
		}
		if h.ep.service == a.ep.service {
			return j
		}
		if best < 0 {
			best = j
		}
	}
	return best
}

// planLocalV1 plans a v1 span without core annotations as one INTERNAL
// span: in the service of its "lc" binary annotation, else of its first
// annotation or binary annotation with an endpoint.
func (d *decoder) planLocalV1(sp *v1Span) {
	h := halfPlan{kind: tracepb.Span_SPAN_KIND_INTERNAL, ep: &noEndpoint, parent: -1}
	found := false
	for i := range sp.bins {
		if b := &sp.bins[i]; b.key == "lc" && b.hasEP {
			h.ep, h.hasEP, found = &b.ep, true, true
			break
		}
	}
	for i := 0; i < len(sp.anns) && !found; i++ {
		if a := &sp.anns[i]; a.hasEP {
			h.ep, h.hasEP, found = &a.ep, true, true
		}
	}
	for i := 0; i < len(sp.bins) && !found; i++ {
		if b := &sp.bins[i]; b.hasEP {
			h.ep, h.hasEP, found = &b.ep, true, true
		}
	}
	for i := range sp.anns {
		if ts := sp.anns[i].ts; h.start == 0 || ts < h.start {
			h.start = ts
		}
	}
	d.plan = append(d.plan[:0], h)
	sp.targetHop, sp.isCall, sp.callee, sp.calleeFirst = 0, false, false, false
}

// planSpanV1 plans sp (sorting merged annotations by time first) and
// returns its number of OTLP spans; false if it has more than maxHalves.
func (d *decoder) planSpanV1(sp *v1Span) (int, bool) {
	if sp.merged {
		cmp := cmpAnnTime
		if oneCall(sp.anns) {
			cmp = cmpAnnSideTime
		}
		if !slices.IsSortedFunc(sp.anns, cmp) {
			slices.SortStableFunc(sp.anns, cmp)
		}
	}
	if !d.planV1(sp) {
		d.planLocalV1(sp)
	}
	return len(d.plan), !d.tooManyHalves
}

func cmpAnnTime(a, b v1Annotation) int {
	switch {
	case a.ts < b.ts:
		return -1
	case a.ts > b.ts:
		return 1
	}
	return 0
}

// cmpAnnSideTime orders the client's core annotations (cs, cr, ms) before
// all others, then by time: the halves of one call merged from objects
// reported by each side then plan as client → server even when the
// server's clock is behind the client's or their times are equal.
func cmpAnnSideTime(a, b v1Annotation) int {
	if ca, cb := callerSide(a.value), callerSide(b.value); ca != cb {
		if ca {
			return -1
		}
		return 1
	}
	return cmpAnnTime(a, b)
}

// callerSide reports whether an annotation value is a caller's core
// annotation.
func callerSide(v string) bool { return v == "cs" || v == "cr" || v == "ms" }

// oneCall reports whether anns hold at most one cs or ms and at most one
// sr or mr: the halves of a single call (not a forwarded chain), whose
// order of planning need not follow time.
func oneCall(anns []v1Annotation) bool {
	callers, callees := 0, 0
	for i := range anns {
		switch anns[i].value {
		case "cs", "ms":
			callers++
		case "sr", "mr":
			callees++
		}
	}
	return callers <= 1 && callees <= 1
}

// objectSide is the side of a v1 span object that reported anns: 1 (the
// callee) when its first cs, sr, ss, cr, ms or mr annotation is sr, ss or
// mr, else 0.
func objectSide(anns []v1Annotation) int8 {
	for i := range anns {
		switch anns[i].value {
		case "cs", "cr", "ms":
			return 0
		case "sr", "ss", "mr":
			return 1
		}
	}
	return 0
}
