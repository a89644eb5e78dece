package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Alert statuses.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Delivery outcomes.
const (
	// OutcomeSent: the receiver accepted the notification.
	OutcomeSent = "sent"
	// OutcomeRetrying: the attempt failed and will be retried.
	OutcomeRetrying = "retrying"
	// OutcomeFailed: the notification was given up (rejected with a 4xx,
	// or webhook retries exhausted).
	OutcomeFailed = "failed"
	// OutcomeDropped: the notification was removed from a full queue, or
	// was still undelivered when the notifier closed.
	OutcomeDropped = "dropped"
)

// Receiver types, the receiver_type label of the self-metrics.
const (
	ReceiverAlertmanager = "alertmanager"
	ReceiverWebhook      = "webhook"
)

// Defaults of Options.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultMaxRetryFor = 5 * time.Minute
	DefaultQueueSize   = 1000
	DefaultMinBackoff  = 500 * time.Millisecond
	DefaultMaxBackoff  = 30 * time.Second
)

// maxBatch is how many alerts one Alertmanager POST carries at most.
const maxBatch = 64

// maxPendingReports bounds the drop reports waiting for OnDelivery.
const maxPendingReports = 10000

// Alert is one alert instance as notified.
type Alert struct {
	// Labels identify the alert (alertname, the rule's labels, the
	// selection); Annotations describe it.
	Labels      map[string]string
	Annotations map[string]string
	// StartsAt is when the alert started firing (a resolved alert keeps
	// it). EndsAt is now + resolve timeout for a firing Alertmanager
	// alert and the resolve time for a resolved one; webhooks always get
	// the zero time ("0001-01-01T00:00:00Z") for a firing alert, as
	// Alertmanager writes it. Zero times are left out of Alertmanager
	// requests.
	StartsAt time.Time
	EndsAt   time.Time
	// GeneratorURL links to the alert in the UI.
	GeneratorURL string
	// Status is StatusFiring or StatusResolved. Empty (or anything else)
	// means resolved when EndsAt is set and not after the notifier's
	// clock at enqueue, firing otherwise.
	Status string
	// Rule and Key identify the instance to the caller (for the delivery
	// records); they are not sent. Alertmanager queues key alerts by them
	// (by the labels' fingerprint when both are empty).
	Rule, Key string
}

// Delivery reports one delivery attempt and its outcome; the caller records
// it in the alert history.
type Delivery struct {
	// Time is when the attempt ended (or the notification was dropped).
	Time time.Time
	// Receiver is "alertmanager URL" or "webhook URL" (password and query
	// redacted).
	Receiver string
	// Rule, Key and Status are the notified alert's.
	Rule, Key, Status string
	// Attempt counts the attempts to deliver this alert version or
	// message, from 1; a drop before any attempt reports 0.
	Attempt int
	// Outcome is OutcomeSent, OutcomeRetrying, OutcomeFailed or
	// OutcomeDropped.
	Outcome string
	// Error describes the failure ("" when sent); HTTPStatus is the
	// receiver's response status (0 without a response).
	Error      string
	HTTPStatus int
}

// Webhook is a webhook receiver.
type Webhook struct {
	// URL is the absolute http or https URL posted to.
	URL string
	// Headers are added to every request (e.g. Authorization); they may
	// override Content-Type. "Host" sets the request's host.
	Headers map[string]string
}

// Options configures a Notifier. Zero fields take the defaults.
type Options struct {
	// Alertmanagers are Alertmanager base URLs; alerts are posted to
	// URL/api/v2/alerts (a URL already ending in /api/v2/alerts is used
	// as is).
	Alertmanagers []string
	// Webhooks receive Alertmanager's webhook JSON.
	Webhooks []Webhook
	// ExternalURL is the webhook payload's externalURL.
	ExternalURL string
	// OnDelivery receives every attempt and outcome. It is called from
	// the notifier's goroutines (never from the caller of Alertmanager or
	// Webhook) and must not block long. Nil: not reported.
	OnDelivery func(Delivery)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Timeout bounds each HTTP request, response body included
	// (default 10s).
	Timeout time.Duration
	// MaxRetryFor is how long a webhook message is retried from its first
	// attempt before it is given up (default 5m).
	MaxRetryFor time.Duration
	// QueueSize bounds each receiver's queue: alerts for an Alertmanager,
	// messages for a webhook (default 1000).
	QueueSize int
	// Client sends the requests; nil: a client of the notifier's own
	// (with http.DefaultTransport's settings).
	Client *http.Client
	// Now is the clock of the delivery records (default time.Now). Retry
	// timing always uses the real clock.
	Now func() time.Time
	// MinBackoff and MaxBackoff bound the jittered exponential backoff
	// between retries (defaults 500ms and 30s). A Retry-After header of a
	// 429 or 503 response is honoured up to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Registerer, when set, receives the self-metrics:
	// flowscope_alert_notifications_{sent,failed,retried,dropped}_total
	// and flowscope_alert_notification_queue_length, each by
	// receiver_type ("alertmanager" or "webhook"). The queue length gauges
	// are unregistered by Close.
	Registerer prometheus.Registerer
}

// Notifier delivers alerts to Alertmanagers and webhooks. Its methods are
// safe for concurrent use.
type Notifier struct {
	opts      Options
	client    *http.Client
	transport *http.Transport // the notifier's own, closed by Close; nil with Options.Client
	log       *slog.Logger
	metrics   *metrics

	ams []*amSender
	whs []*whSender

	rep *reporter

	// stop is cancelled when Close gives up flushing: in-flight requests
	// and backoff waits end at once.
	stop       context.Context
	cancelStop context.CancelFunc

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	closed    chan struct{} // closed when Close returns
}

// New validates the options and starts one goroutine per receiver. The error
// names the bad URL or header.
func New(opts Options) (*Notifier, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxRetryFor <= 0 {
		opts.MaxRetryFor = DefaultMaxRetryFor
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	n := &Notifier{opts: opts, log: opts.Logger, client: opts.Client, closed: make(chan struct{})}

	for i, raw := range opts.Alertmanagers {
		u, err := parseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("notify: alertmanagers[%d] %q: %w", i, redactRaw(raw), err)
		}
		endpoint := u
		if !strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/api/v2/alerts") {
			endpoint = u.JoinPath("api", "v2", "alerts")
		}
		n.ams = append(n.ams, newAMSender(n, endpoint.String(), ReceiverAlertmanager+" "+redact(u)))
	}
	for i, wh := range opts.Webhooks {
		u, err := parseURL(wh.URL)
		if err != nil {
			return nil, fmt.Errorf("notify: webhooks[%d] %q: %w", i, redactRaw(wh.URL), err)
		}
		for k, v := range wh.Headers {
			if err := checkHeader(k, v); err != nil {
				return nil, fmt.Errorf("notify: webhooks[%d] %q: header %q: %w", i, redact(u), k, err)
			}
		}
		n.whs = append(n.whs, newWHSender(n, u.String(), maps.Clone(wh.Headers), ReceiverWebhook+" "+redact(u)))
	}

	m, err := newMetrics(opts.Registerer, n)
	if err != nil {
		return nil, err
	}
	n.metrics = m

	if n.client == nil {
		n.transport = http.DefaultTransport.(*http.Transport).Clone()
		n.client = &http.Client{Transport: n.transport}
	}
	n.stop, n.cancelStop = context.WithCancel(context.Background())
	n.rep = newReporter(n)
	n.wg.Add(len(n.ams) + len(n.whs))
	for _, s := range n.ams {
		go func() { defer n.wg.Done(); s.run() }()
	}
	for _, s := range n.whs {
		go func() { defer n.wg.Done(); s.run() }()
	}
	go n.rep.run()
	return n, nil
}

// Alertmanager queues alerts for every Alertmanager. It never blocks; a
// queued version of the same alert (same Rule and Key) is replaced. Alerts
// queued after Close began are ignored.
func (n *Notifier) Alertmanager(alerts []Alert) {
	if len(n.ams) == 0 || len(alerts) == 0 {
		return
	}
	prepared := make([]*Alert, len(alerts))
	for i := range alerts {
		prepared[i] = n.prepare(alerts[i])
	}
	for _, s := range n.ams {
		s.enqueue(prepared)
	}
}

// Webhook queues one state change of an alert for every webhook. It never
// blocks. Messages queued after Close began are ignored.
func (n *Notifier) Webhook(a Alert) {
	if len(n.whs) == 0 {
		return
	}
	p := n.prepare(a)
	for _, s := range n.whs {
		s.enqueue(p)
	}
}

// prepare copies the alert (the caller may reuse its maps) and settles its
// status.
func (n *Notifier) prepare(a Alert) *Alert {
	a.Labels = maps.Clone(a.Labels)
	if a.Labels == nil {
		a.Labels = map[string]string{}
	}
	a.Annotations = maps.Clone(a.Annotations)
	if a.Status != StatusFiring && a.Status != StatusResolved {
		if !a.EndsAt.IsZero() && !a.EndsAt.After(n.opts.Now()) {
			a.Status = StatusResolved
		} else {
			a.Status = StatusFiring
		}
	}
	return &a
}

// Close stops accepting notifications and delivers what is queued (with
// retries) until every queue is empty or ctx ends. Then it stops every
// goroutine, reports what was not delivered as "dropped" and returns; the
// error says how many notifications were not delivered. Close may be called
// more than once; later calls wait for the first and return its result.
func (n *Notifier) Close(ctx context.Context) error {
	first := false
	n.closeOnce.Do(func() {
		first = true
		n.closeErr = n.close(ctx)
		close(n.closed)
	})
	if !first {
		select {
		case <-n.closed:
		case <-ctx.Done():
			return fmt.Errorf("notify: close: %w", context.Cause(ctx))
		}
	}
	return n.closeErr
}

func (n *Notifier) close(ctx context.Context) error {
	for _, s := range n.ams {
		s.beginClose()
	}
	for _, s := range n.whs {
		s.beginClose()
	}
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		n.cancelStop()
		<-done
	}
	n.cancelStop()

	undelivered := 0
	for _, s := range n.ams {
		undelivered += s.abandon()
	}
	for _, s := range n.whs {
		undelivered += s.abandon()
	}
	n.rep.close()
	n.metrics.unregister()
	if n.transport != nil {
		n.transport.CloseIdleConnections()
	}
	if undelivered > 0 {
		err := context.Cause(ctx)
		if err == nil {
			err = context.Canceled
		}
		return fmt.Errorf("notify: close: %d notifications not delivered: %w", undelivered, err)
	}
	return nil
}

// report hands a delivery record to OnDelivery.
func (n *Notifier) report(d Delivery) {
	if n.opts.OnDelivery != nil {
		n.opts.OnDelivery(d)
	}
}

// backoff returns the jittered wait after the given number of consecutive
// failures (from 1): MinBackoff doubling up to MaxBackoff, then a uniform
// pick in [d/2, d].
func (n *Notifier) backoff(failures int) time.Duration {
	d := n.opts.MinBackoff
	for i := 1; i < failures && d < n.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.opts.MaxBackoff)
	half := d / 2
	return half + rand.N(d-half+1)
}

// retryWait is the wait before the next attempt after failures consecutive
// failures, honouring a Retry-After up to MaxBackoff.
func (n *Notifier) retryWait(failures int, err error) time.Duration {
	d := n.backoff(failures)
	var he *httpError
	if errors.As(err, &he) && he.retryAfter > d {
		d = min(he.retryAfter, n.opts.MaxBackoff)
	}
	return d
}

// sleep waits d or until the notifier stops; it reports whether the full
// wait elapsed.
func (n *Notifier) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-n.stop.Done():
		return false
	}
}

// httpError is a non-2xx response.
type httpError struct {
	status     int
	body       string
	retryAfter time.Duration
}

func (e *httpError) Error() string {
	s := "HTTP " + strconv.Itoa(e.status)
	if t := http.StatusText(e.status); t != "" {
		s += " " + t
	}
	if e.body != "" {
		s += ": " + e.body
	}
	return s
}

// permanent reports whether the failure is not worth retrying: a 4xx other
// than 408 Request Timeout and 429 Too Many Requests.
func permanent(err error) bool {
	var he *httpError
	if !errors.As(err, &he) {
		return false
	}
	return he.status >= 400 && he.status < 500 &&
		he.status != http.StatusRequestTimeout && he.status != http.StatusTooManyRequests
}

// statusOf is the HTTP status of a failure (0 without a response).
func statusOf(err error) int {
	var he *httpError
	if errors.As(err, &he) {
		return he.status
	}
	return 0
}

// maxErrorBody is how much of an error response's body is kept in the
// error; maxDrainBody how much is read to reuse the connection.
const (
	maxErrorBody = 256
	maxDrainBody = 64 << 10
)

// post sends one JSON request within Timeout. It returns nil on a 2xx
// response, an *httpError on another status, a transport error otherwise.
func (n *Notifier) post(target string, headers map[string]string, body []byte) error {
	ctx, cancel := context.WithTimeout(n.stop, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "flowscope-alerting")
	for k, v := range headers {
		if http.CanonicalHeaderKey(k) == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return n.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBody))
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBody))
	he := &httpError{status: resp.StatusCode, body: strings.TrimSpace(strings.ToValidUTF8(string(snippet), "?"))}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		he.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return he
}

// transportError describes a failed request without its URL (the receiver
// names it, and the query may hold a secret).
func (n *Notifier) transportError(ctx context.Context, err error) error {
	if n.stop.Err() != nil {
		return errors.New("notifier closed")
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("request timed out after %v", n.opts.Timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("request timed out: %w", err)
	}
	return err
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// parseURL accepts absolute http and https URLs with a host.
func parseURL(raw string) (*url.URL, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, errors.New("empty URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("invalid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("not an absolute http or https URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("URL has no host")
	}
	return u, nil
}

// redact is the URL as reported: no password, no query, no fragment.
func redact(u *url.URL) string {
	c := *u
	c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = "", false, "", ""
	s := c.Redacted()
	if u.RawQuery != "" {
		s += "?xxxxx"
	}
	return s
}

// redactRaw redacts a URL that may not parse.
func redactRaw(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if _, hasPassword := u.User.Password(); hasPassword || u.RawQuery != "" || u.Fragment != "" {
			return redact(u)
		}
	}
	return raw
}

// checkHeader validates a webhook header.
func checkHeader(name, value string) error {
	if name == "" {
		return errors.New("empty header name")
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Errorf("invalid character %q in header name", name[i])
		}
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c == '\r' || c == '\n' || c == 0 {
			return errors.New("control character in header value")
		}
	}
	return nil
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// reporter hands drop reports to OnDelivery from its own goroutine, so that
// the callers of Alertmanager and Webhook never call OnDelivery.
type reporter struct {
	n       *Notifier
	mu      sync.Mutex
	pending []Delivery
	lost    int
	closing bool
	wake    chan struct{}
	done    chan struct{}
}

func newReporter(n *Notifier) *reporter {
	return &reporter{n: n, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// add queues a report; beyond maxPendingReports it is counted as lost.
func (r *reporter) add(d Delivery) {
	r.mu.Lock()
	if len(r.pending) >= maxPendingReports {
		r.lost++
	} else {
		r.pending = append(r.pending, d)
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *reporter) run() {
	defer close(r.done)
	for {
		r.mu.Lock()
		batch, lost, closing := r.pending, r.lost, r.closing
		r.pending, r.lost = nil, 0
		r.mu.Unlock()
		for _, d := range batch {
			r.n.report(d)
		}
		if lost > 0 {
			r.n.log.Warn("alert notification drop reports lost: too many at once", "lost", lost)
		}
		if len(batch) == 0 && lost == 0 && closing {
			return
		}
		if len(batch) == 0 && lost == 0 {
			<-r.wake
		}
	}
}

// close delivers the pending reports and stops the goroutine.
func (r *reporter) close() {
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	<-r.done
}

// metrics are the self-metrics; they exist (unregistered) without a
// Registerer.
type metrics struct {
	reg                            prometheus.Registerer
	sent, failed, retried, dropped *prometheus.CounterVec
	gauges                         []prometheus.Collector
}

func newMetrics(reg prometheus.Registerer, n *Notifier) (*metrics, error) {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowscope_alert_notifications_" + name + "_total", Help: help,
		}, []string{"receiver_type"})
	}
	m := &metrics{
		reg:     reg,
		sent:    counter("sent", "Alert notifications delivered (Alertmanager: alerts; webhooks: messages)."),
		failed:  counter("failed", "Alert notifications given up: rejected with a 4xx or out of retries."),
		retried: counter("retried", "Failed alert notification attempts that are retried."),
		dropped: counter("dropped", "Alert notifications dropped from a full queue or undelivered at shutdown."),
	}
	for _, typ := range []string{ReceiverAlertmanager, ReceiverWebhook} {
		m.gauges = append(m.gauges, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "flowscope_alert_notification_queue_length",
			Help:        "Alert notifications waiting in the receivers' queues.",
			ConstLabels: prometheus.Labels{"receiver_type": typ},
		}, func() float64 { return float64(n.queueLength(typ)) }))
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []**prometheus.CounterVec{&m.sent, &m.failed, &m.retried, &m.dropped} {
		if err := reg.Register(*c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
					*c = existing
					continue
				}
			}
			m.unregister()
			return nil, fmt.Errorf("notify: register metrics: %w", err)
		}
	}
	for i, g := range m.gauges {
		if err := reg.Register(g); err != nil {
			m.gauges = m.gauges[:i]
			m.unregister()
			return nil, fmt.Errorf("notify: register metrics (is another notifier still open?): %w", err)
		}
	}
	return m, nil
}

// unregister removes the queue length gauges (they read this notifier's
// queues). The counters stay, so a later notifier continues them.
func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, g := range m.gauges {
		m.reg.Unregister(g)
	}
	m.gauges = nil
}

// queueLength sums the queue lengths of one receiver type.
func (n *Notifier) queueLength(typ string) int {
	total := 0
	if typ == ReceiverAlertmanager {
		for _, s := range n.ams {
			total += s.length()
		}
	} else {
		for _, s := range n.whs {
			total += s.length()
		}
	}
	return total
}
