package main

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// The span shapes of -shape.
const (
	shapeSmall     = "small"     // telemetrygen-shaped pairs (buildTemplates)
	shapeRealistic = "realistic" // call trees over 20 services (buildRealisticTemplates)
)

// Default -spans-per-request of each shape.
const (
	defaultSmallSpans     = 512
	defaultRealisticSpans = 1000
)

// requestIDKey is the span attribute whose 32-hex-digit value render
// rewrites on every send.
const requestIDKey = "app.request_id"

// The realistic shape's sizes: resource and span attributes per item, the
// cardinalities of the attribute values, and the largest trace.
const (
	realisticResourceAttrs = 7
	realisticSpanAttrs     = 10
	realisticInstances     = 3    // instances (pod, host) per service
	realisticPeers         = 256  // distinct network.peer.address values
	realisticMaxTrace      = 150  // spans of the largest trace
	realisticErrorRate     = 0.01 // HTTP calls answered 5xx (status ERROR)
	realisticNotFoundRate  = 0.02 // HTTP calls answered 404 (no error status)
	realisticSchemaURL     = "https://opentelemetry.io/schemas/1.26.0"
)

// Cardinalities of the realistic shape (-cardinality): with low, the
// default, attribute values come from small sets and app.request_id is one
// value per trace of the pre-encoded pool, so the requests' values repeat
// as a pre-encoded load generator's do; with high, url.path carries one of
// 10,000 ids, enduser.id one of 100,000 users, and app.request_id is
// different for every span of every send (render rewrites it).
const (
	cardinalityLow  = "low"
	cardinalityHigh = "high"
)

// realisticPathIDs and realisticUsers are the distinct ids in url.path
// and enduser.id values; rewriteRequestIDs makes app.request_id unique
// per span and send. setCardinality sets them.
var (
	realisticPathIDs  = 100
	realisticUsers    = 1_000
	rewriteRequestIDs = false
)

// setCardinality selects the value sets of the realistic shape.
func setCardinality(c string) error {
	switch c {
	case cardinalityLow, "":
		realisticPathIDs, realisticUsers, rewriteRequestIDs = 100, 1_000, false
	case cardinalityHigh:
		realisticPathIDs, realisticUsers, rewriteRequestIDs = 10_000, 100_000, true
	default:
		return fmt.Errorf("unknown cardinality %q: want %s or %s", c, cardinalityLow, cardinalityHigh)
	}
	return nil
}

// rService is one service of the realistic topology: the routes it
// serves, the services it calls and the databases it queries.
type rService struct {
	name    string
	version string
	port    int
	routes  []string // "METHOD /path/{id}"
	callees []string
	dbs     []string // rDB namespaces
}

// rDB is one database the services query: an uninstrumented callee, so its
// calls are CLIENT spans without a server half (a virtual node named after
// db.namespace).
type rDB struct {
	system, namespace, host string
	port                    int
	queries                 []rQuery
}

// rQuery is one statement of a database.
type rQuery struct{ op, collection, text string }

// realisticServices is the topology: frontend → gateway → … up to seven
// levels deep, 20 services.
var realisticServices = []rService{
	{name: "frontend", version: "2.14.1", port: 8080, routes: []string{"GET /", "GET /product/{id}", "GET /cart", "POST /cart/checkout", "GET /search"},
		callees: []string{"gateway"}},
	{name: "gateway", version: "1.9.0", port: 8080, routes: []string{"GET /api/products/{id}", "GET /api/cart/{id}", "POST /api/checkout", "GET /api/search", "GET /api/recommendations/{id}"},
		callees: []string{"auth", "user", "catalog", "search", "cart", "checkout", "recommendation", "ad", "review"}, dbs: []string{"sessions"}},
	{name: "auth", version: "3.2.7", port: 9000, routes: []string{"POST /v1/token/verify", "GET /v1/session/{id}"}, dbs: []string{"sessions", "accounts"}},
	{name: "user", version: "1.22.3", port: 8081, routes: []string{"GET /users/{id}", "GET /users/{id}/preferences", "PUT /users/{id}"},
		callees: []string{"auth"}, dbs: []string{"accounts", "cache"}},
	{name: "catalog", version: "4.0.2", port: 8082, routes: []string{"GET /products/{id}", "GET /products", "GET /categories/{id}"},
		callees: []string{"inventory", "pricing", "review"}, dbs: []string{"catalog", "cache"}},
	{name: "search", version: "0.31.0", port: 8083, routes: []string{"GET /search", "GET /suggest"},
		callees: []string{"catalog", "ad"}, dbs: []string{"cache"}},
	{name: "recommendation", version: "1.3.5", port: 8084, routes: []string{"GET /recommendations/{id}"},
		callees: []string{"catalog", "user"}, dbs: []string{"cache", "events"}},
	{name: "cart", version: "2.7.0", port: 8085, routes: []string{"GET /carts/{id}", "POST /carts/{id}/items", "DELETE /carts/{id}/items/{id}"},
		callees: []string{"pricing", "inventory", "currency"}, dbs: []string{"sessions", "orders"}},
	{name: "checkout", version: "5.1.0", port: 8086, routes: []string{"POST /checkout", "GET /checkout/{id}"},
		callees: []string{"cart", "payment", "shipping", "inventory", "pricing", "currency", "notification", "fraud"}, dbs: []string{"orders"}},
	{name: "payment", version: "3.0.9", port: 8087, routes: []string{"POST /payments", "GET /payments/{id}"},
		callees: []string{"fraud", "ledger", "currency"}, dbs: []string{"orders"}},
	{name: "shipping", version: "1.11.4", port: 8088, routes: []string{"POST /quotes", "POST /shipments", "GET /shipments/{id}"},
		callees: []string{"inventory", "notification"}, dbs: []string{"logistics"}},
	{name: "inventory", version: "2.2.2", port: 8089, routes: []string{"GET /stock/{id}", "POST /reservations"}, dbs: []string{"catalog", "cache"}},
	{name: "pricing", version: "1.6.0", port: 8090, routes: []string{"GET /prices/{id}", "POST /prices/batch"}, dbs: []string{"catalog", "cache"}},
	{name: "currency", version: "0.9.12", port: 8091, routes: []string{"GET /rates", "POST /convert"}, dbs: []string{"cache"}},
	{name: "notification", version: "1.4.1", port: 8092, routes: []string{"POST /notifications"},
		callees: []string{"email"}, dbs: []string{"events"}},
	{name: "email", version: "0.8.3", port: 8093, routes: []string{"POST /send"}, dbs: []string{"events"}},
	{name: "ad", version: "2.0.0", port: 8094, routes: []string{"GET /ads", "GET /ads/{id}"}, dbs: []string{"cache"}},
	{name: "review", version: "1.1.7", port: 8095, routes: []string{"GET /reviews/{id}", "POST /reviews"},
		callees: []string{"user"}, dbs: []string{"reviews"}},
	{name: "fraud", version: "3.5.2", port: 8096, routes: []string{"POST /score"},
		callees: []string{"user", "ledger"}, dbs: []string{"events", "accounts"}},
	{name: "ledger", version: "1.0.4", port: 8097, routes: []string{"POST /entries", "GET /balances/{id}"}, dbs: []string{"ledger"}},
}

// realisticDBs are the databases: 51 statements over PostgreSQL, Redis and
// MongoDB.
var realisticDBs = []rDB{
	{system: "postgresql", namespace: "accounts", host: "accounts-db.internal", port: 5432, queries: []rQuery{
		{"SELECT", "users", "SELECT id, email, name FROM users WHERE id = $1"},
		{"SELECT", "users", "SELECT id FROM users WHERE email = $1"},
		{"UPDATE", "users", "UPDATE users SET last_login = now() WHERE id = $1"},
		{"SELECT", "preferences", "SELECT key, value FROM preferences WHERE user_id = $1"},
		{"INSERT", "preferences", "INSERT INTO preferences VALUES ($1, $2, $3)"},
		{"SELECT", "credentials", "SELECT hash FROM credentials WHERE user_id = $1"},
	}},
	{system: "postgresql", namespace: "orders", host: "orders-db.internal", port: 5432, queries: []rQuery{
		{"SELECT", "orders", "SELECT * FROM orders WHERE id = $1"},
		{"SELECT", "orders", "SELECT id FROM orders WHERE customer_id = $1 LIMIT 20"},
		{"INSERT", "orders", "INSERT INTO orders VALUES ($1, $2, $3, $4, $5)"},
		{"UPDATE", "orders", "UPDATE orders SET status = $2 WHERE id = $1"},
		{"SELECT", "order_items", "SELECT * FROM order_items WHERE order_id = $1"},
		{"INSERT", "order_items", "INSERT INTO order_items VALUES ($1, $2, $3, $4)"},
		{"SELECT", "payments", "SELECT * FROM payments WHERE order_id = $1"},
		{"INSERT", "payments", "INSERT INTO payments VALUES ($1, $2, $3, $4)"},
	}},
	{system: "postgresql", namespace: "catalog", host: "catalog-db.internal", port: 5432, queries: []rQuery{
		{"SELECT", "products", "SELECT * FROM products WHERE id = $1"},
		{"SELECT", "products", "SELECT id FROM products WHERE category_id = $1 LIMIT 48"},
		{"SELECT", "categories", "SELECT * FROM categories WHERE id = $1"},
		{"SELECT", "stock", "SELECT * FROM stock WHERE sku = ANY($1)"},
		{"UPDATE", "stock", "UPDATE stock SET reserved = reserved + $2 WHERE sku = $1"},
		{"SELECT", "prices", "SELECT * FROM prices WHERE sku = ANY($1)"},
		{"SELECT", "prices", "SELECT amount_cents FROM prices WHERE sku = $1 AND region = $2"},
	}},
	{system: "postgresql", namespace: "logistics", host: "logistics-db.internal", port: 5432, queries: []rQuery{
		{"SELECT", "shipments", "SELECT * FROM shipments WHERE id = $1"},
		{"INSERT", "shipments", "INSERT INTO shipments VALUES ($1, $2, $3, $4)"},
		{"SELECT", "rates", "SELECT * FROM rates WHERE zone = $1"},
		{"UPDATE", "shipments", "UPDATE shipments SET state = $2 WHERE id = $1"},
	}},
	{system: "postgresql", namespace: "ledger", host: "ledger-db.internal", port: 5432, queries: []rQuery{
		{"INSERT", "entries", "INSERT INTO entries VALUES ($1, $2, $3)"},
		{"SELECT", "balances", "SELECT balance FROM balances WHERE account_id = $1"},
		{"UPDATE", "balances", "UPDATE balances SET balance = balance + $2 WHERE account_id = $1"},
	}},
	{system: "redis", namespace: "sessions", host: "sessions-redis.internal", port: 6379, queries: []rQuery{
		{"GET", "session", "GET session:?"},
		{"SET", "session", "SET session:? ? EX 1800"},
		{"EXPIRE", "session", "EXPIRE session:? 1800"},
		{"HGETALL", "cart", "HGETALL cart:?"},
		{"HSET", "cart", "HSET cart:? ? ?"},
		{"DEL", "cart", "DEL cart:?"},
	}},
	{system: "redis", namespace: "cache", host: "cache-redis.internal", port: 6379, queries: []rQuery{
		{"GET", "product", "GET product:?"},
		{"MGET", "price", "MGET price:? price:? price:?"},
		{"SET", "product", "SET product:? ? EX 300"},
		{"GET", "rates", "GET fx:rates"},
		{"GET", "reco", "GET reco:user:?"},
		{"ZREVRANGE", "ads", "ZREVRANGE ads:slot:? 0 9"},
		{"GET", "user", "GET user:?"},
	}},
	{system: "mongodb", namespace: "reviews", host: "reviews-mongo.internal", port: 27017, queries: []rQuery{
		{"find", "reviews", `{"find":"reviews","filter":{"product_id":"?"},"limit":20}`},
		{"insert", "reviews", `{"insert":"reviews","documents":[{"product_id":"?"}]}`},
		{"aggregate", "reviews", `{"aggregate":"reviews","pipeline":[{"$match":{"product_id":"?"}}]}`},
	}},
	{system: "mongodb", namespace: "events", host: "events-mongo.internal", port: 27017, queries: []rQuery{
		{"insert", "events", `{"insert":"events","documents":[{"type":"?"}]}`},
		{"find", "events", `{"find":"events","filter":{"user_id":"?"},"limit":50}`},
		{"find", "templates", `{"find":"templates","filter":{"name":"?"},"limit":1}`},
		{"update", "deliveries", `{"update":"deliveries","updates":[{"q":{"_id":"?"}}]}`},
		{"find", "signals", `{"find":"signals","filter":{"user_id":"?"}}`},
	}},
}

// realisticUserAgents are the user_agent.original values.
var realisticUserAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
	"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36",
	"Go-http-client/1.1",
	"okhttp/4.12.0",
	"python-requests/2.32",
	"grpc-java/1.64.0",
	"axios/1.7.2",
}

// rInstance is one instance (pod) of a service: its resource attributes.
type rInstance struct{ id, host, pod, region string }

// realisticModel is the topology with its lookups, built once.
type realisticModel struct {
	services  []rService
	index     map[string]int // service name → index
	callees   [][]int
	dbs       [][]int // per service, indexes into realisticDBs
	dbIndex   map[string]int
	instances [][]rInstance
	peers     []string
}

// newRealisticModel resolves the topology's names and draws the instances
// (the same on every run: they do not depend on -seed).
func newRealisticModel() (*realisticModel, error) {
	m := &realisticModel{services: realisticServices, index: map[string]int{}, dbIndex: map[string]int{}}
	for i, s := range m.services {
		m.index[s.name] = i
	}
	for i, d := range realisticDBs {
		m.dbIndex[d.namespace] = i
	}
	r := rand.New(rand.NewPCG(0x5e71ce, 0x1a57a))
	for _, s := range m.services {
		var cs, ds []int
		for _, c := range s.callees {
			j, ok := m.index[c]
			if !ok {
				return nil, fmt.Errorf("realistic topology: %s calls unknown service %s", s.name, c)
			}
			cs = append(cs, j)
		}
		for _, d := range s.dbs {
			j, ok := m.dbIndex[d]
			if !ok {
				return nil, fmt.Errorf("realistic topology: %s queries unknown database %s", s.name, d)
			}
			ds = append(ds, j)
		}
		m.callees, m.dbs = append(m.callees, cs), append(m.dbs, ds)
		var insts []rInstance
		for k := range realisticInstances {
			region := []string{"eu-west-1", "eu-central-1"}[k%2]
			insts = append(insts, rInstance{
				id:     fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff, r.Uint32()&0xfff, r.Uint64()&0xffffffffffff),
				host:   fmt.Sprintf("ip-10-%d-%d-%d.%s.compute.internal", k, r.IntN(256), r.IntN(256), region),
				pod:    fmt.Sprintf("%s-%07x%02x-%s", s.name, r.Uint32()&0xfffffff, r.IntN(256), podSuffix(r)),
				region: region,
			})
		}
		m.instances = append(m.instances, insts)
	}
	for i := range realisticPeers {
		m.peers = append(m.peers, fmt.Sprintf("10.%d.%d.%d", i%4, 16+i/16, 2+i*7%250))
	}
	return m, nil
}

// podSuffix is the random 5-character suffix of a Kubernetes pod name.
func podSuffix(r *rand.Rand) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, 5)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// rNode is one node of a trace's call tree: a service handling a request
// (a SERVER span; the root, or the callee of a CLIENT span of its
// parent), or a database call (a CLIENT span of its parent's service).
type rNode struct {
	db     bool
	svc    int // the service (db: the database's index)
	route  string
	query  int
	status int           // HTTP status of the request (db: 0)
	dur    time.Duration // the server span's, or the database call's
	net    time.Duration // callee nodes: the caller's CLIENT span minus dur
	kids   []*rNode
}

// rGen draws the traces of one request.
type rGen struct {
	m     *realisticModel
	r     *rand.Rand
	left  int               // spans the current trace may still add
	inst  []int             // instance of each service in this request
	spans [][]*tracepb.Span // per service, the spans of this request
}

// buildRealisticTemplates encodes n distinct requests of exactly
// spansPerRequest spans in the realistic shape (see realistic.go's
// constants and bench/README.md): call trees over 20 services, one
// ResourceSpans per service in the request.
func buildRealisticTemplates(n, spansPerRequest int, seed uint64) ([]*template, error) {
	if spansPerRequest < 1 {
		spansPerRequest = 1
	}
	m, err := newRealisticModel()
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(seed, 0x7ea1))
	now := time.Now()
	out := make([]*template, 0, n)
	for i := range n {
		req, parents := realisticRequest(m, r, spansPerRequest, now)
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
		if err != nil {
			return nil, fmt.Errorf("encode realistic request %d: %w", i, err)
		}
		tp := &template{raw: raw, genNanos: uint64(now.UnixNano())}
		if err := tp.locate(); err != nil {
			return nil, fmt.Errorf("locate the IDs of realistic request %d: %w", i, err)
		}
		s := spansPerRequest
		if tp.spans != s || len(tp.traceIDs) != s || len(tp.spanIDs) != s+parents || len(tp.times) != 2*s || len(tp.reqIDs) != s {
			return nil, fmt.Errorf("realistic template %d: located %d spans, %d trace IDs, %d span IDs, %d times, %d request IDs; want %d spans with %d parents",
				i, tp.spans, len(tp.traceIDs), len(tp.spanIDs), len(tp.times), len(tp.reqIDs), s, parents)
		}
		if !rewriteRequestIDs {
			tp.reqIDs, tp.reqBase = nil, nil // sent as encoded
		}
		out = append(out, tp)
	}
	return out, nil
}

// realisticRequest draws one request of exactly spans spans ending at
// about now; parents is how many of them have a parent.
func realisticRequest(m *realisticModel, r *rand.Rand, spans int, now time.Time) (*coltracepb.ExportTraceServiceRequest, int) {
	g := &rGen{m: m, r: r, inst: make([]int, len(m.services)), spans: make([][]*tracepb.Span, len(m.services))}
	for i := range g.inst {
		g.inst[i] = r.IntN(realisticInstances)
	}
	left, parents := spans, 0
	var traces [][]*tracepb.Span // per trace, its spans, to place in time
	for t := 0; left > 0; t++ {
		g.left = min(left, realisticMaxTrace) - 1
		used := g.left + 1
		root := &rNode{svc: m.index["frontend"], status: g.status()}
		root.route = m.services[root.svc].routes[r.IntN(len(m.services[root.svc].routes))]
		g.grow(root, 1, 3+r.IntN(4))
		used -= g.left
		left -= used
		parents += used - 1
		g.time(root)
		traces = append(traces, g.emit(root))
	}
	// Trace t ends (len(traces) − t) ms before now, as telemetrygen spaces
	// its traces.
	for t, tr := range traces {
		end := now.Add(-time.Duration(len(traces)-t) * time.Millisecond)
		shift := uint64(end.UnixNano()) - tr[0].EndTimeUnixNano // tr[0] is the root
		for _, s := range tr {
			s.StartTimeUnixNano += shift
			s.EndTimeUnixNano += shift
		}
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	for i, ss := range g.spans {
		if len(ss) == 0 {
			continue
		}
		s, in := m.services[i], m.instances[i][g.inst[i]]
		req.ResourceSpans = append(req.ResourceSpans, &tracepb.ResourceSpans{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
				str("service.name", s.name), str("service.version", s.version), str("service.instance.id", in.id),
				str("host.name", in.host), str("deployment.environment.name", "production"),
				str("cloud.region", in.region), str("k8s.pod.name", in.pod),
			}},
			ScopeSpans: []*tracepb.ScopeSpans{{
				Scope: &commonpb.InstrumentationScope{Name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", Version: "0.52.0"},
				Spans: ss,
			}},
			SchemaUrl: realisticSchemaURL,
		})
	}
	return req, parents
}

// grow adds the calls of node n (at level, of a trace depth levels deep)
// while the trace has spans left: database calls of n's service and, above
// the last level, calls to 1–4 of its callees (fewer deeper down).
func (g *rGen) grow(n *rNode, level, depth int) {
	r := g.r
	var dbs, calls int
	if ds := g.m.dbs[n.svc]; len(ds) > 0 {
		dbs = []int{0, 0, 1, 1, 1, 2, 2, 3}[r.IntN(8)]
	}
	if cs := g.m.callees[n.svc]; len(cs) > 0 && level < depth {
		maxFan := 4
		switch {
		case level >= 4:
			maxFan = 2
		case level == 3:
			maxFan = 3
		}
		calls = 1 + r.IntN(maxFan)
	}
	for dbs+calls > 0 {
		if r.IntN(dbs+calls) < dbs { // a database call, in random order with the service calls
			dbs--
			if g.left < 1 {
				continue
			}
			g.left--
			ds := g.m.dbs[n.svc]
			d := ds[r.IntN(len(ds))]
			n.kids = append(n.kids, &rNode{db: true, svc: d, query: r.IntN(len(realisticDBs[d].queries))})
			continue
		}
		calls--
		if g.left < 2 {
			continue
		}
		g.left -= 2
		cs := g.m.callees[n.svc]
		k := &rNode{svc: cs[r.IntN(len(cs))], status: g.status()}
		rs := g.m.services[k.svc].routes
		k.route = rs[r.IntN(len(rs))]
		n.kids = append(n.kids, k)
		g.grow(k, level+1, depth)
	}
}

// status draws an HTTP response status: about 1 % 5xx, 2 % 404, else 200.
func (g *rGen) status() int {
	x := g.r.Float64()
	switch {
	case x < realisticErrorRate:
		return []int{500, 502, 503, 504}[g.r.IntN(4)]
	case x < realisticErrorRate+realisticNotFoundRate:
		return 404
	}
	return 200
}

// logNormal draws a log-normal duration of the given median and spread,
// clamped to [lo, hi].
func (g *rGen) logNormal(median time.Duration, sigma float64, lo, hi time.Duration) time.Duration {
	d := time.Duration(float64(median) * math.Exp(sigma*g.r.NormFloat64()))
	return min(max(d, lo), hi)
}

// time sets the durations of n's subtree bottom-up: a database call takes
// about 800 µs (100 µs–200 ms), a service's own work about 300 µs, a hop's
// network time about 150 µs, and a service's span holds its own work plus
// its calls one after the other. One database call in 200 and one
// service in 500 is a slow outlier (5–30 times, 20–100 times slower).
func (g *rGen) time(n *rNode) time.Duration {
	if n.db {
		n.dur = g.logNormal(800*time.Microsecond, 1.0, 100*time.Microsecond, 200*time.Millisecond)
		if g.r.IntN(200) == 0 {
			n.dur *= time.Duration(5 + g.r.IntN(26))
		}
		return n.dur
	}
	self := g.logNormal(300*time.Microsecond, 0.9, 40*time.Microsecond, 50*time.Millisecond)
	if g.r.IntN(500) == 0 {
		self *= time.Duration(20 + g.r.IntN(81))
	}
	n.dur = self
	for _, k := range n.kids {
		d := g.time(k)
		if !k.db {
			k.net = g.logNormal(150*time.Microsecond, 0.5, 20*time.Microsecond, 3*time.Millisecond)
			d += k.net
		}
		n.dur += d
	}
	return n.dur
}

// emit creates the spans of the trace rooted at root, starting at time 0
// (shifted later), into g.spans, and returns them root first.
func (g *rGen) emit(root *rNode) []*tracepb.Span {
	tid := randID(g.r, 16)
	user := "u" + strconv.Itoa(g.r.IntN(realisticUsers))
	var out []*tracepb.Span
	var place func(n *rNode, start uint64, parent []byte)
	place = func(n *rNode, start uint64, parent []byte) {
		sid := randID(g.r, 8)
		srv := g.httpSpan(n, tid, sid, parent, tracepb.Span_SPAN_KIND_SERVER, start, uint64(n.dur), user, n == root)
		g.spans[n.svc] = append(g.spans[n.svc], srv)
		out = append(out, srv)
		// The service's own work, split into len(kids)+1 random gaps around
		// its calls.
		var calls time.Duration
		for _, k := range n.kids {
			calls += k.dur + k.net
		}
		self := n.dur - calls
		w := make([]float64, len(n.kids)+1)
		var sum float64
		for i := range w {
			w[i] = 0.2 + g.r.Float64()
			sum += w[i]
		}
		at := start + uint64(float64(self)*w[0]/sum)
		for i, k := range n.kids {
			if k.db {
				s := g.dbSpan(k, tid, sid, at)
				g.spans[n.svc] = append(g.spans[n.svc], s)
				out = append(out, s)
			} else {
				cid := randID(g.r, 8)
				c := g.httpSpan(k, tid, cid, sid, tracepb.Span_SPAN_KIND_CLIENT, at, uint64(k.dur+k.net), user, false)
				g.spans[n.svc] = append(g.spans[n.svc], c)
				out = append(out, c)
				place(k, at+uint64(k.net/2), cid)
			}
			at += uint64(k.dur+k.net) + uint64(float64(self)*w[i+1]/sum)
		}
	}
	place(root, 0, nil)
	return out
}

// httpSpan is the SERVER span of node n (the root, or the callee of a
// call) or the CLIENT span of its caller: the same ten attributes on both
// halves, the status ERROR for a 5xx answer.
func (g *rGen) httpSpan(n *rNode, tid, sid, parent []byte, kind tracepb.Span_SpanKind, start, dur uint64, user string, root bool) *tracepb.Span {
	r := g.r
	s := g.m.services[n.svc]
	method, route, _ := strings.Cut(n.route, " ")
	path := route
	for strings.Contains(path, "{id}") {
		path = strings.Replace(path, "{id}", strconv.Itoa(r.IntN(realisticPathIDs)), 1)
	}
	addr, port := s.name, int64(s.port)
	ua := realisticUserAgents[5+r.IntN(5)] // service-to-service clients
	if root {
		addr, port = "shop.example.com", 443
		ua = realisticUserAgents[r.IntN(5)] // browsers
	}
	span := &tracepb.Span{
		TraceId: tid, SpanId: sid, ParentSpanId: parent, Name: method + " " + route, Kind: kind,
		StartTimeUnixNano: start, EndTimeUnixNano: start + dur,
		Attributes: []*commonpb.KeyValue{
			str("http.request.method", method),
			str("url.path", path),
			str("http.route", route),
			intKV("http.response.status_code", int64(n.status)),
			str("server.address", addr),
			intKV("server.port", port),
			str("network.peer.address", g.m.peers[r.IntN(len(g.m.peers))]),
			str("user_agent.original", ua),
			str("enduser.id", user),
			str(requestIDKey, g.requestID(tid)),
		},
		Status: &tracepb.Status{},
	}
	if n.status >= 500 {
		span.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
	}
	return span
}

// dbSpan is the CLIENT span of database call n: ten attributes naming the
// database (db.namespace names the virtual node), no server half.
func (g *rGen) dbSpan(n *rNode, tid, parent []byte, start uint64) *tracepb.Span {
	d := realisticDBs[n.svc]
	q := d.queries[n.query]
	return &tracepb.Span{
		TraceId: tid, SpanId: randID(g.r, 8), ParentSpanId: parent, Name: q.op + " " + q.collection, Kind: tracepb.Span_SPAN_KIND_CLIENT,
		StartTimeUnixNano: start, EndTimeUnixNano: start + uint64(n.dur),
		Attributes: []*commonpb.KeyValue{
			str("db.system.name", d.system),
			str("db.namespace", d.namespace),
			str("db.operation.name", q.op),
			str("db.query.text", q.text),
			str("db.collection.name", q.collection),
			str("server.address", d.host),
			intKV("server.port", int64(d.port)),
			str("network.peer.address", g.m.peers[g.r.IntN(len(g.m.peers))]),
			intKV("thread.id", int64(20+g.r.IntN(200))),
			str(requestIDKey, g.requestID(tid)),
		},
		Status: &tracepb.Status{},
	}
}

// requestID is the app.request_id of a span of trace tid: random (and
// rewritten on every send) with high cardinality, the trace's ID in hex
// with low.
func (g *rGen) requestID(tid []byte) string {
	if rewriteRequestIDs {
		return randHex(g.r)
	}
	return hex.EncodeToString(tid)
}

// randHex is 32 random lowercase hex digits.
func randHex(r *rand.Rand) string { return hex.EncodeToString(randID(r, 16)) }

// intKV is an integer attribute.
func intKV(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}
