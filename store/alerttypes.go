package store

import "time"

// Alert states, as stored and as the API reports them.
const (
	AlertInactive = "inactive"
	AlertPending  = "pending"
	AlertFiring   = "firing"
)

// AlertState is the persisted state of one active alert instance (pending
// or firing), so that a restart continues where the process stopped:
// pending keeps its start, firing stays firing without a second "firing"
// notification.
type AlertState struct {
	// Rule is the rule's name; Key identifies the instance within the rule
	// (its selection labels, canonically encoded by the engine).
	Rule string
	Key  string
	// Labels are the instance's labels: alertname, the rule's labels and
	// the selection (service, operation, source, target, check).
	Labels map[string]string
	// State is AlertPending or AlertFiring.
	State string
	// ActiveAt is when the instance became pending (or fired, with for: 0).
	ActiveAt time.Time
	// FiredAt is when it started firing; zero while pending.
	FiredAt time.Time
	// RecoveredAt is when a firing instance last recovered while
	// keep_firing_for holds it firing; zero otherwise.
	RecoveredAt time.Time
	// Value and Threshold are the last evaluated value and the threshold,
	// in the signal's unit.
	Value     float64
	Threshold float64
	// Exemplars are up to 5 trace IDs (32 lowercase hex digits) from the
	// window that made the instance active.
	Exemplars []string
	// Notified is the last state ("firing") whose webhook notification
	// was handed to every webhook; it keeps a restart from notifying the
	// same firing twice.
	Notified string
}

// Alert event kinds.
const (
	AlertEventTransition = "transition"
	AlertEventDelivery   = "delivery"
)

// AlertEvent is one entry of the alert history: a state transition of an
// instance, or a notification delivery attempt and its outcome.
type AlertEvent struct {
	// Time is when it happened. Events are kept in (Time, insertion) order.
	// DB.SaveAlerts and DB.AppendAlertEvents store a zero Time as the
	// store's clock; a stored Time lies between 1970 and 2262 and is read
	// back in UTC.
	Time time.Time
	// Kind is AlertEventTransition or AlertEventDelivery.
	Kind   string
	Rule   string
	Key    string
	Labels map[string]string

	// Transition fields: From and To are states (AlertInactive,
	// AlertPending, AlertFiring); Value and Threshold are in the signal's
	// unit; Exemplars are trace IDs (hex).
	From, To  string
	Value     float64
	Threshold float64
	Exemplars []string

	// Delivery fields: Receiver names the target ("alertmanager URL" or
	// "webhook URL"); Status is the notified status ("firing" or
	// "resolved"); Attempt counts from 1; Outcome is "sent", "retrying",
	// "failed" (gave up) or "dropped" (queue full); Error says why it
	// failed; HTTPStatus is the response code (0 without a response).
	Receiver   string
	Status     string
	Attempt    int
	Outcome    string
	Error      string
	HTTPStatus int
}

// AlertHistoryQuery selects alert events: of Rule when set, with Time in
// [Start, End] (zero: unbounded), newest first, at most Limit (0 or
// negative: 100; more than 10,000 is taken as 10,000). See DB.AlertHistory.
type AlertHistoryQuery struct {
	Rule       string
	Start, End time.Time
	Limit      int
}

// AlertStateKey identifies a persisted alert state: its rule and instance
// key (AlertState.Rule and AlertState.Key), as DB.SaveAlerts deletes it.
type AlertStateKey struct{ Rule, Key string }
