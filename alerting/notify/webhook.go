package notify

import (
	"container/list"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// webhookReceiver is the payload's receiver name.
const webhookReceiver = "flowscope"

// webhookMessage is Alertmanager's webhook payload (version "4"), fields in
// Alertmanager's order.
type webhookMessage struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []webhookAlert    `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
}

// webhookAlert is one alert of a webhook payload.
type webhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// webhookBody is the JSON payload for one alert: a group of its own (grouped
// by all labels). A firing alert's endsAt is the zero time, as Alertmanager
// writes it.
func webhookBody(a *Alert, externalURL string) ([]byte, error) {
	labels := nonNil(a.Labels)
	annotations := nonNil(a.Annotations)
	wa := webhookAlert{
		Status:       a.Status,
		Labels:       labels,
		Annotations:  annotations,
		StartsAt:     a.StartsAt.UTC(),
		GeneratorURL: a.GeneratorURL,
		Fingerprint:  fingerprint(labels),
	}
	if a.Status == StatusResolved && !a.EndsAt.IsZero() {
		wa.EndsAt = a.EndsAt.UTC()
	}
	m := webhookMessage{
		Receiver:          webhookReceiver,
		Status:            a.Status,
		Alerts:            []webhookAlert{wa},
		GroupLabels:       labels,
		CommonLabels:      labels,
		CommonAnnotations: annotations,
		ExternalURL:       externalURL,
		Version:           "4",
		GroupKey:          "{}:" + labelSetString(labels),
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode webhook message: %w", err)
	}
	return b, nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// FNV-1a, 64 bit.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// separatorByte separates names and values in a fingerprint; it cannot occur
// in UTF-8.
const separatorByte = 255

// fingerprint is Alertmanager's (Prometheus' model.LabelSet.Fingerprint)
// fingerprint of a label set in hex: 64-bit FNV-1a over the sorted label
// names and values, each followed by a 0xff byte.
func fingerprint(labels map[string]string) string {
	h := uint64(fnvOffset64)
	add := func(s string) {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= fnvPrime64
		}
		h ^= separatorByte
		h *= fnvPrime64
	}
	for _, name := range slices.Sorted(maps.Keys(labels)) {
		add(name)
		add(labels[name])
	}
	return fmt.Sprintf("%016x", h)
}

// labelSetString formats labels as Prometheus' model.LabelSet.String does:
// {a="1", b="2"}, sorted by name, values quoted.
func labelSetString(labels map[string]string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, name := range slices.Sorted(maps.Keys(labels)) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(labels[name]))
	}
	b.WriteByte('}')
	return b.String()
}

// whMsg is one queued webhook message.
type whMsg struct {
	alert *Alert
}

// whSender delivers to one webhook, in order.
type whSender struct {
	n        *Notifier
	url      string
	headers  map[string]string
	receiver string

	mu       sync.Mutex
	queue    list.List // of *whMsg, oldest first; the message in flight is not in it
	inflight *whMsg
	attempts int // of the message in flight
	closing  bool
	wake     chan struct{}
}

func newWHSender(n *Notifier, url string, headers map[string]string, receiver string) *whSender {
	return &whSender{n: n, url: url, headers: headers, receiver: receiver, wake: make(chan struct{}, 1)}
}

// enqueue appends a message, dropping the oldest waiting one beyond
// QueueSize.
func (s *whSender) enqueue(a *Alert) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.queue.PushBack(&whMsg{alert: a})
	var dropped []*whMsg
	for s.queue.Len() > s.n.opts.QueueSize {
		dropped = append(dropped, s.queue.Remove(s.queue.Front()).(*whMsg))
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	s.reportDropped(dropped, 0, "queue full")
}

// reportDropped reports drops through the reporter goroutine.
func (s *whSender) reportDropped(dropped []*whMsg, attempts int, reason string) {
	if len(dropped) == 0 {
		return
	}
	now := s.n.opts.Now()
	s.n.metrics.dropped.WithLabelValues(ReceiverWebhook).Add(float64(len(dropped)))
	for _, m := range dropped {
		s.n.rep.add(Delivery{Time: now, Receiver: s.receiver, Rule: m.alert.Rule, Key: m.alert.Key,
			Status: m.alert.Status, Attempt: attempts, Outcome: OutcomeDropped, Error: reason})
	}
}

// next takes the oldest message, waiting for one; nil when the sender
// closed with an empty queue or the notifier stopped.
func (s *whSender) next() *whMsg {
	for {
		s.mu.Lock()
		if s.n.stop.Err() != nil {
			s.mu.Unlock()
			return nil
		}
		if front := s.queue.Front(); front != nil {
			m := s.queue.Remove(front).(*whMsg)
			s.inflight, s.attempts = m, 0
			s.mu.Unlock()
			return m
		}
		closing := s.closing
		s.mu.Unlock()
		if closing {
			return nil
		}
		select {
		case <-s.wake:
		case <-s.n.stop.Done():
			return nil
		}
	}
}

func (s *whSender) run() {
	for {
		m := s.next()
		if m == nil {
			return
		}
		if !s.deliver(m) {
			return // stopped: Close reports the message in flight
		}
		s.mu.Lock()
		s.inflight = nil
		s.mu.Unlock()
	}
}

// deliver sends one message until it is sent or given up; false when the
// notifier stopped first.
func (s *whSender) deliver(m *whMsg) bool {
	body, err := webhookBody(m.alert, s.n.opts.ExternalURL)
	if err != nil { // cannot happen with string maps
		s.n.log.Error("webhook message not encodable", "receiver", s.receiver, "err", err)
		s.n.metrics.failed.WithLabelValues(ReceiverWebhook).Inc()
		s.n.report(s.delivery(m, 0, OutcomeFailed, err))
		return true
	}
	var first time.Time
	for attempt := 1; ; attempt++ {
		if attempt == 1 {
			first = time.Now()
		}
		err := s.n.post(s.url, s.headers, body)
		if err != nil && s.n.stop.Err() != nil {
			return false
		}
		s.mu.Lock()
		s.attempts = attempt
		s.mu.Unlock()
		switch {
		case err == nil:
			s.n.metrics.sent.WithLabelValues(ReceiverWebhook).Inc()
			s.n.report(s.delivery(m, attempt, OutcomeSent, nil))
			return true
		case permanent(err):
			s.n.log.Warn("webhook rejected a notification; not retrying", "receiver", s.receiver,
				"rule", m.alert.Rule, "key", m.alert.Key, "status", statusOf(err), "err", err)
			s.n.metrics.failed.WithLabelValues(ReceiverWebhook).Inc()
			s.n.report(s.delivery(m, attempt, OutcomeFailed, err))
			return true
		}
		left := s.n.opts.MaxRetryFor - time.Since(first)
		if left <= 0 {
			s.n.log.Warn("webhook notification given up", "receiver", s.receiver,
				"rule", m.alert.Rule, "key", m.alert.Key, "attempts", attempt, "err", err)
			s.n.metrics.failed.WithLabelValues(ReceiverWebhook).Inc()
			s.n.report(s.delivery(m, attempt, OutcomeFailed,
				fmt.Errorf("gave up after %d attempts in %v: %w", attempt, s.n.opts.MaxRetryFor, err)))
			return true
		}
		wait := min(s.n.retryWait(attempt, err), left)
		s.n.log.Warn("webhook notification failed; retrying", "receiver", s.receiver,
			"rule", m.alert.Rule, "key", m.alert.Key, "attempt", attempt, "retry_in", wait, "err", err)
		s.n.metrics.retried.WithLabelValues(ReceiverWebhook).Inc()
		s.n.report(s.delivery(m, attempt, OutcomeRetrying, err))
		if !s.n.sleep(wait) {
			return false
		}
	}
}

// delivery is the record of an attempt.
func (s *whSender) delivery(m *whMsg, attempt int, outcome string, err error) Delivery {
	d := Delivery{Time: s.n.opts.Now(), Receiver: s.receiver, Rule: m.alert.Rule, Key: m.alert.Key,
		Status: m.alert.Status, Attempt: attempt, Outcome: outcome}
	if err != nil {
		d.Error, d.HTTPStatus = err.Error(), statusOf(err)
	}
	return d
}

// beginClose stops accepting messages; the goroutine exits once the queue is
// empty.
func (s *whSender) beginClose() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// abandon reports the message in flight and the queued ones as dropped,
// after the goroutine exited, and returns how many that was.
func (s *whSender) abandon() int {
	s.mu.Lock()
	inflight, attempts := s.inflight, s.attempts
	s.inflight = nil
	var left []*whMsg
	for el := s.queue.Front(); el != nil; el = el.Next() {
		left = append(left, el.Value.(*whMsg))
	}
	s.queue.Init()
	s.mu.Unlock()
	const reason = "notifier closed before delivery"
	total := len(left)
	if inflight != nil {
		s.reportDropped([]*whMsg{inflight}, attempts, reason)
		total++
	}
	s.reportDropped(left, 0, reason)
	return total
}

// length is the number of waiting messages (not counting the one in
// flight).
func (s *whSender) length() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue.Len()
}
