package notify

import (
	"container/list"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// amAlert is Alertmanager's v2 postableAlert: labels required, the rest
// optional.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     string            `json:"startsAt,omitempty"`
	EndsAt       string            `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// formatTime is an RFC 3339 time in UTC, "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// amBody is the JSON body of one Alertmanager POST.
func amBody(batch []*amEntry) ([]byte, error) {
	out := make([]amAlert, len(batch))
	for i, e := range batch {
		a := e.alert
		out[i] = amAlert{
			Labels:       a.Labels,
			Annotations:  a.Annotations,
			StartsAt:     formatTime(a.StartsAt),
			EndsAt:       formatTime(a.EndsAt),
			GeneratorURL: a.GeneratorURL,
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode alerts: %w", err)
	}
	return b, nil
}

// amEntry is one queued alert version.
type amEntry struct {
	key   string
	alert *Alert
	// attempts made for this version; solo: send it alone (its batch was
	// rejected as a whole).
	attempts int
	solo     bool
}

// amKey is the queue key of an alert.
func amKey(a *Alert) string {
	if a.Rule == "" && a.Key == "" {
		return "\xff" + fingerprint(a.Labels)
	}
	return a.Rule + "\xff" + a.Key
}

// amSender delivers to one Alertmanager.
type amSender struct {
	n        *Notifier
	endpoint string
	receiver string

	mu      sync.Mutex
	queue   list.List // of *amEntry, oldest first
	byKey   map[string]*list.Element
	closing bool
	wake    chan struct{}
}

func newAMSender(n *Notifier, endpoint, receiver string) *amSender {
	return &amSender{n: n, endpoint: endpoint, receiver: receiver,
		byKey: map[string]*list.Element{}, wake: make(chan struct{}, 1)}
}

// enqueue adds alerts, replacing queued versions and dropping the oldest
// beyond QueueSize.
func (s *amSender) enqueue(alerts []*Alert) {
	var dropped []*amEntry
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	for _, a := range alerts {
		key := amKey(a)
		if el, ok := s.byKey[key]; ok {
			s.queue.Remove(el) // superseded
		}
		s.byKey[key] = s.queue.PushBack(&amEntry{key: key, alert: a})
	}
	dropped = s.trimLocked()
	s.mu.Unlock()
	s.signal()
	s.reportDropped(dropped, "queue full")
}

// trimLocked drops the oldest entries beyond QueueSize.
func (s *amSender) trimLocked() []*amEntry {
	var dropped []*amEntry
	for s.queue.Len() > s.n.opts.QueueSize {
		e := s.queue.Remove(s.queue.Front()).(*amEntry)
		delete(s.byKey, e.key)
		dropped = append(dropped, e)
	}
	return dropped
}

// reportDropped reports drops through the reporter goroutine.
func (s *amSender) reportDropped(dropped []*amEntry, reason string) {
	if len(dropped) == 0 {
		return
	}
	now := s.n.opts.Now()
	s.n.metrics.dropped.WithLabelValues(ReceiverAlertmanager).Add(float64(len(dropped)))
	for _, e := range dropped {
		s.n.rep.add(Delivery{Time: now, Receiver: s.receiver, Rule: e.alert.Rule, Key: e.alert.Key,
			Status: e.alert.Status, Attempt: e.attempts, Outcome: OutcomeDropped, Error: reason})
	}
}

func (s *amSender) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take removes the next batch: up to maxBatch alerts, or one solo alert.
// It reports false when the queue is empty.
func (s *amSender) take() ([]*amEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var batch []*amEntry
	for s.queue.Len() > 0 && len(batch) < maxBatch {
		front := s.queue.Front()
		e := front.Value.(*amEntry)
		if e.solo && len(batch) > 0 {
			break
		}
		s.queue.Remove(front)
		delete(s.byKey, e.key)
		batch = append(batch, e)
		if e.solo {
			break
		}
	}
	return batch, len(batch) > 0
}

// requeue puts a batch back at the front unless newer versions of its alerts
// were queued meanwhile, then drops the oldest beyond QueueSize.
func (s *amSender) requeue(batch []*amEntry) {
	s.mu.Lock()
	for i := len(batch) - 1; i >= 0; i-- {
		e := batch[i]
		if _, superseded := s.byKey[e.key]; superseded {
			continue
		}
		s.byKey[e.key] = s.queue.PushFront(e)
	}
	dropped := s.trimLocked()
	s.mu.Unlock()
	s.reportDropped(dropped, "queue full")
}

// waitWork blocks until the queue has alerts (true) or the sender closes
// with an empty queue or the notifier stops (false).
func (s *amSender) waitWork() bool {
	for {
		s.mu.Lock()
		n, closing := s.queue.Len(), s.closing
		s.mu.Unlock()
		if n > 0 {
			return s.n.stop.Err() == nil
		}
		if closing {
			return false
		}
		select {
		case <-s.wake:
		case <-s.n.stop.Done():
			return false
		}
	}
}

func (s *amSender) run() {
	failures := 0
	for s.waitWork() {
		batch, ok := s.take()
		if !ok {
			continue
		}
		body, err := amBody(batch)
		if err == nil {
			err = s.n.post(s.endpoint, nil, body)
		}
		if err != nil && s.n.stop.Err() != nil {
			s.requeue(batch) // reported undelivered by Close
			return
		}
		now := s.n.opts.Now()
		for _, e := range batch {
			e.attempts++
		}
		if err == nil {
			failures = 0
			s.n.metrics.sent.WithLabelValues(ReceiverAlertmanager).Add(float64(len(batch)))
			for _, e := range batch {
				s.n.report(s.delivery(now, e, OutcomeSent, nil))
			}
			continue
		}
		status := statusOf(err)
		if permanent(err) {
			if len(batch) > 1 {
				// One bad alert may sink a batch: send them one by one.
				s.n.log.Warn("alertmanager rejected a batch; sending its alerts one by one",
					"receiver", s.receiver, "alerts", len(batch), "status", status, "err", err)
				s.n.metrics.retried.WithLabelValues(ReceiverAlertmanager).Add(float64(len(batch)))
				for _, e := range batch {
					e.solo = true
					s.n.report(s.delivery(now, e, OutcomeRetrying, err))
				}
				s.requeue(batch)
				continue
			}
			s.n.log.Warn("alertmanager rejected an alert; not retrying",
				"receiver", s.receiver, "rule", batch[0].alert.Rule, "key", batch[0].alert.Key, "status", status, "err", err)
			s.n.metrics.failed.WithLabelValues(ReceiverAlertmanager).Inc()
			s.n.report(s.delivery(now, batch[0], OutcomeFailed, err))
			continue
		}
		failures++
		wait := s.n.retryWait(failures, err)
		s.n.log.Warn("alertmanager notification failed; retrying",
			"receiver", s.receiver, "alerts", len(batch), "failures", failures, "retry_in", wait, "err", err)
		s.n.metrics.retried.WithLabelValues(ReceiverAlertmanager).Add(float64(len(batch)))
		for _, e := range batch {
			s.n.report(s.delivery(now, e, OutcomeRetrying, err))
		}
		s.requeue(batch)
		if !s.n.sleep(wait) {
			return
		}
	}
}

// delivery is the record of an attempt.
func (s *amSender) delivery(now time.Time, e *amEntry, outcome string, err error) Delivery {
	d := Delivery{Time: now, Receiver: s.receiver, Rule: e.alert.Rule, Key: e.alert.Key,
		Status: e.alert.Status, Attempt: e.attempts, Outcome: outcome}
	if err != nil {
		d.Error, d.HTTPStatus = err.Error(), statusOf(err)
	}
	return d
}

// beginClose stops accepting alerts; the goroutine exits once the queue is
// empty.
func (s *amSender) beginClose() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.signal()
}

// abandon reports what is still queued as dropped, after the goroutine
// exited, and returns how many alerts that was.
func (s *amSender) abandon() int {
	s.mu.Lock()
	var left []*amEntry
	for el := s.queue.Front(); el != nil; el = el.Next() {
		left = append(left, el.Value.(*amEntry))
	}
	s.queue.Init()
	clear(s.byKey)
	s.mu.Unlock()
	s.reportDropped(left, "notifier closed before delivery")
	return len(left)
}

// length is the number of queued alerts.
func (s *amSender) length() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue.Len()
}
