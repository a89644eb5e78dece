// Package notify delivers alert notifications to Alertmanager (v2 API) and to
// webhooks (Alertmanager's webhook JSON, version "4"), with bounded queues,
// retries with jittered exponential backoff and per-request timeouts. It never
// blocks its caller: Notifier.Alertmanager and Notifier.Webhook only enqueue.
//
// # Alertmanager
//
// Every Alertmanager URL has one goroutine and one queue of alerts keyed by
// (Alert.Rule, Alert.Key), as Prometheus' notifier has. A newer version of an
// alert replaces the queued one (superseding is normal and not reported);
// beyond Options.QueueSize alerts the oldest is dropped and reported with
// Outcome "dropped". The goroutine posts batches of up to 64 alerts to
// URL/api/v2/alerts. A failed batch (connection error, timeout, 5xx, 408,
// 429) is put back and retried with backoff for as long as its alerts stay
// queued: a newer version of an alert supersedes its pending retry. Any other
// 4xx is not retried: a rejected batch of several alerts is split and its
// alerts are sent one by one, so one bad alert does not sink the others; a
// rejected single alert is reported "failed". The caller resends firing
// alerts itself (every minute, endsAt = now + 4m), so nothing is resent here
// after it was delivered.
//
// # Webhooks
//
// Every webhook has one goroutine and one FIFO queue of messages, one message
// per Notifier.Webhook call, delivered in order: a message waits until the
// one before it was delivered or given up. Failures are retried with backoff
// for up to Options.MaxRetryFor from the first attempt, then reported
// "failed"; 4xx other than 408 and 429 are not retried. Beyond
// Options.QueueSize waiting messages the oldest is dropped and reported
// "dropped".
//
// The message is Alertmanager's webhook payload for one alert, grouped by all
// of its labels (as Alertmanager's group_by: ['...']): groupLabels and
// commonLabels are the alert's labels, commonAnnotations its annotations, and
// groupKey is `{}:{alertname="X", service="y"}`, unique per alert instance,
// so receivers that correlate firing and resolved messages by groupKey see
// each instance separately. An alert's fingerprint is Alertmanager's: the hex
// of the 64-bit FNV-1a hash of its sorted label names and values.
//
// # Reports
//
// Every attempt and outcome is handed to Options.OnDelivery ("retrying",
// "sent", "failed", "dropped") from the notifier's own goroutines, never from
// the goroutine that calls Alertmanager or Webhook, so OnDelivery may take
// locks that callers hold while enqueueing. Drop reports wait in a buffer of
// at most 10,000; beyond that they are counted, logged and lost.
//
// Receivers are named "alertmanager URL" and "webhook URL" in reports, with
// any password and query string of the URL redacted; webhook headers are
// never reported or logged.
package notify
