package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// noEnv is a getenv with nothing set.
func noEnv(string) string { return "" }

// envMap returns a getenv reading from m.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	want := Config{
		DataDir:         "./data",
		HTTPAddr:        "127.0.0.1:8686",
		ShutdownTimeout: 30 * time.Second,
		MaxImportBytes:  4 << 30,
		MemoryBudget:    384 << 20,
		Receivers: Receivers{
			OTLPGRPCAddr:    "127.0.0.1:4317",
			OTLPHTTPAddr:    "127.0.0.1:4318",
			ZipkinAddr:      "127.0.0.1:9411",
			MaxRequestBytes: 16777216,
		},
		Store:       Store{Retention: 168 * time.Hour, QueueBytes: 268435456},
		Correlation: Correlation{Keys: []string{"correlation.id", "correlation_id", "x-correlation-id", "request.id", "x-request-id", "http.request.header.x-correlation-id", "http.request.header.x-request-id"}},
		Aggregation: Aggregation{Enabled: true, SignificantDigits: 2, MaxLatency: time.Hour, EdgeWait: 10 * time.Second,
			MaxPending: 1000000, Retention10s: 24 * time.Hour, Retention1m: 168 * time.Hour, Retention1h: 2160 * time.Hour},
		Alerting:   Alerting{Interval: time.Second},
		Synthetics: Synthetics{Retention: 30 * 24 * time.Hour, CorrelationHeader: "X-Correlation-ID", MaxConcurrent: 16},
		REDMetrics: REDMetrics{
			Buckets: []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
				100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
				5 * time.Second, 10 * time.Second},
			Quantiles: []float64{0.5, 0.9, 0.99}, QuantileWindow: time.Minute, MaxSeries: 20000,
		},
		Query: QueryFrontend{Peers: []string{}, PeerTimeout: 10 * time.Second, RefreshInterval: 30 * time.Second},
		Log:   Logging{Level: "info", Format: "text"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Default() =\n%+v\nwant\n%+v", c, want)
	}
	// Default must hand out a fresh slice every time.
	c.Correlation.Keys[0] = "changed"
	if Default().Correlation.Keys[0] != "correlation.id" {
		t.Error("Default() shares its correlation keys slice between calls")
	}
	c.REDMetrics.Buckets[0], c.REDMetrics.Quantiles[0] = time.Hour, 0.1
	if d := Default(); d.REDMetrics.Buckets[0] != 5*time.Millisecond || d.REDMetrics.Quantiles[0] != 0.5 {
		t.Error("Default() shares its red_metrics slices between calls")
	}
}

func TestLoadNothing(t *testing.T) {
	c, err := Load(nil, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("Load(nil) = %+v, want Default()", c)
	}
}

func TestGoodConfigs(t *testing.T) {
	custom := Default()
	custom.DataDir = "/var/lib/flowscope"
	custom.Receivers.OTLPGRPCAddr = "0.0.0.0:4317"
	custom.Receivers.MaxRequestBytes = 4 << 20
	custom.Store.Retention = 24 * time.Hour
	custom.Correlation.Keys = []string{"trace.session", "x-request-id"}
	custom.Log.Format = "json"

	noCorrelation := Default()
	noCorrelation.Correlation.Keys = []string{}

	tests := map[string]Config{
		"full.yml":           Default(), // docs/configuration.md's example: every default spelled out
		"custom.yml":         custom,
		"empty.yml":          Default(),
		"comments-only.yml":  Default(),
		"no-correlation.yml": noCorrelation,
	}
	files, err := filepath.Glob("testdata/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasSuffix(name, ".bad.yml") {
			continue
		}
		if _, ok := tests[name]; !ok {
			t.Errorf("testdata/%s has no case in TestGoodConfigs", name)
		}
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Load([]string{"--config", filepath.Join("testdata", name)}, noEnv, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// TestDocumentedExample keeps the full example of docs/configuration.md
// identical to testdata/full.yml, which TestGoodConfigs loads.
func TestDocumentedExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile("testdata/full.yml")
	if err != nil {
		t.Fatal(err)
	}
	_, example, ok := strings.Cut(string(doc), "## Full example")
	if ok {
		_, example, ok = strings.Cut(example, "```yaml\n")
	}
	if ok {
		example, _, ok = strings.Cut(example, "```")
	}
	if !ok {
		t.Fatal("docs/configuration.md has no ```yaml block under \"## Full example\"")
	}
	if example != string(full) {
		t.Error("the example in docs/configuration.md differs from internal/config/testdata/full.yml; copy one to the other")
	}
}

// TestBadConfigs loads every testdata/*.bad.yml; each must have a case here
// giving a fragment of its error message.
func TestBadConfigs(t *testing.T) {
	tests := map[string]string{
		"unknown-key.bad.yml":            `line 3: unknown key "receivers.otlp_grpc_adr" (valid keys here: otlp_grpc_addr, otlp_http_addr, zipkin_addr, max_request_bytes)`,
		"aggregation.bad.yml":            `aggregation.significant_digits = 7: must be between 1 and 5`,
		"unknown-top.bad.yml":            `line 1: unknown key "retention" (valid keys here: data_dir, http_addr, shutdown_timeout, dashboards_dir, policies, max_import_bytes, memory_budget, receivers, store, correlation, aggregation, alerting, synthetics, red_metrics, node, query, log, security)`,
		"unknown-section.bad.yml":        `line 1: unknown key "storage"`,
		"duration-int.bad.yml":           `line 2: store.retention must be a duration such as 30s, 15m or 168h, not "168"`,
		"duration-text.bad.yml":          `line 1: shutdown_timeout must be a duration such as 30s, 15m or 168h, not "1 minute"`,
		"bytes-unit.bad.yml":             `line 2: receivers.max_request_bytes must be a whole number of bytes, not "16MiB"`,
		"section-scalar.bad.yml":         `line 1: log must be a mapping of keys to values, not "debug"`,
		"keys-scalar.bad.yml":            `line 3: correlation.keys must be a list of strings, not a mapping`,
		"not-a-mapping.bad.yml":          `line 1: the document must be a mapping of keys to values, not a list`,
		"syntax.bad.yml":                 `yaml: line 2: did not find expected key`,
		"two-documents.bad.yml":          `a second YAML document; the file must hold one`,
		"retention-short.bad.yml":        `store.retention = 30s: must be at least 1m (flag --retention, env FLOWSCOPE_RETENTION)`,
		"addr-no-port.bad.yml":           `http_addr = "localhost": must be host:port, for example 127.0.0.1:4317 (flag --http-addr, env FLOWSCOPE_HTTP_ADDR)`,
		"addr-bad-port.bad.yml":          `receivers.otlp_http_addr = "127.0.0.1:http": port "http" must be a number from 0 to 65535`,
		"addr-duplicate.bad.yml":         `http_addr = "127.0.0.1:8686": already used by receivers.otlp_http_addr`,
		"queue-small.bad.yml":            `store.queue_bytes = 1000: must be positive and at least receivers.max_request_bytes (1048576) (flag --store-queue-bytes, env FLOWSCOPE_STORE_QUEUE_BYTES)`,
		"request-zero.bad.yml":           `receivers.max_request_bytes = 0: must be positive (flag --max-request-bytes, env FLOWSCOPE_MAX_REQUEST_BYTES)`,
		"log-level.bad.yml":              `log.level = "verbose": must be one of debug, info, warn, error (flag --log-level, env FLOWSCOPE_LOG_LEVEL)`,
		"log-format.bad.yml":             `log.format = "logfmt": must be text or json (flag --log-format, env FLOWSCOPE_LOG_FORMAT)`,
		"keys-duplicate.bad.yml":         `correlation.keys = [x-request-id,request.id,x-request-id]: entry "x-request-id" is listed twice`,
		"keys-empty-entry.bad.yml":       `correlation.keys = [x-request-id,]: entry 1 is empty`,
		"data-dir-empty.bad.yml":         `data_dir = "": must not be empty (flag --data-dir, env FLOWSCOPE_DATA_DIR)`,
		"shutdown-zero.bad.yml":          `shutdown_timeout = 0s: must be positive (flag --shutdown-timeout, env FLOWSCOPE_SHUTDOWN_TIMEOUT)`,
		"alerting-interval.bad.yml":      `alerting.interval = 10ms: must be between 100ms and 1m (flag --alerting-interval, env FLOWSCOPE_ALERTING_INTERVAL)`,
		"webhook-url.bad.yml":            `entry "localhost:5001/hook" must be an absolute http or https URL (flag --webhook-url, env FLOWSCOPE_WEBHOOK_URL)`,
		"webhook-key.bad.yml":            `field header not found`,
		"synthetics-header.bad.yml":      `synthetics.correlation_header = "X Correlation": must be an HTTP header name (flag --synthetics-correlation-header, env FLOWSCOPE_SYNTHETICS_CORRELATION_HEADER)`,
		"synthetics-concurrency.bad.yml": `synthetics.max_concurrent = 0: must be between 1 and 1000 (flag --synthetics-max-concurrent, env FLOWSCOPE_SYNTHETICS_MAX_CONCURRENT)`,
		"red-buckets-order.bad.yml":      `red_metrics.buckets = [10ms,5ms,1s]: bounds must ascend: 5ms follows 10ms (flag --red-buckets, env FLOWSCOPE_RED_BUCKETS)`,
		"red-buckets-scalar.bad.yml":     `line 2: red_metrics.buckets must be a list of durations such as 5ms, 250ms or 2.5s, not "5ms"`,
		"red-buckets-unit.bad.yml":       `line 3: red_metrics.buckets[0] must be a duration such as 30s, 15m or 168h, not "5"`,
		"red-quantiles.bad.yml":          `red_metrics.quantiles = [0.5,99]: quantile 99 is not in (0, 1): write 0.99 for p99 (flag --red-quantiles, env FLOWSCOPE_RED_QUANTILES)`,
		"red-quantiles-text.bad.yml":     `line 2: red_metrics.quantiles[1] must be a number, not "p99"`,
		"red-max-series.bad.yml":         `line 2: red_metrics.max_series must be a whole number, not "lots"`,
	}
	files, err := filepath.Glob("testdata/*.bad.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := tests[filepath.Base(f)]; !ok {
			t.Errorf("%s has no case in TestBadConfigs", f)
		}
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			_, err := Load([]string{"--config", path}, noEnv, io.Discard)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, want)
			}
			if strings.Contains(err.Error(), "line ") && !strings.Contains(err.Error(), "config file "+path+": ") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yml")
	writeFile(t, file, "data_dir: /from/file\nlog:\n  level: warn\nstore:\n  retention: 48h\n")
	other := filepath.Join(dir, "other.yml")
	writeFile(t, other, "data_dir: /from/other\n")

	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		dataDir string
		level   string
		ret     time.Duration
	}{
		{name: "defaults", dataDir: "./data", level: "info", ret: 168 * time.Hour},
		{name: "file over defaults", args: []string{"--config", file}, dataDir: "/from/file", level: "warn", ret: 48 * time.Hour},
		{name: "config from env", env: map[string]string{"FLOWSCOPE_CONFIG": file}, dataDir: "/from/file", level: "warn", ret: 48 * time.Hour},
		{name: "config flag over config env", args: []string{"--config", other}, env: map[string]string{"FLOWSCOPE_CONFIG": file}, dataDir: "/from/other", level: "info", ret: 168 * time.Hour},
		{
			name:    "env over file",
			args:    []string{"--config", file},
			env:     map[string]string{"FLOWSCOPE_DATA_DIR": "/from/env", "FLOWSCOPE_RETENTION": "2h"},
			dataDir: "/from/env", level: "warn", ret: 2 * time.Hour,
		},
		{
			name:    "empty env is unset",
			args:    []string{"--config", file},
			env:     map[string]string{"FLOWSCOPE_DATA_DIR": ""},
			dataDir: "/from/file", level: "warn", ret: 48 * time.Hour,
		},
		{
			name:    "flag over env and file",
			args:    []string{"--config", file, "--data-dir", "/from/flag", "-log-level=debug"},
			env:     map[string]string{"FLOWSCOPE_DATA_DIR": "/from/env", "FLOWSCOPE_LOG_LEVEL": "error"},
			dataDir: "/from/flag", level: "debug", ret: 48 * time.Hour,
		},
		{
			name:    "last flag wins",
			args:    []string{"--retention=1h", "--retention", "3h"},
			dataDir: "./data", level: "info", ret: 3 * time.Hour,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, envMap(tt.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if c.DataDir != tt.dataDir || c.Log.Level != tt.level || c.Store.Retention != tt.ret {
				t.Errorf("got data_dir=%q log.level=%q store.retention=%v, want %q %q %v",
					c.DataDir, c.Log.Level, c.Store.Retention, tt.dataDir, tt.level, tt.ret)
			}
		})
	}
}

// leafKeys returns the dotted YAML keys of every leaf field of t.
func leafKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for f := range t.NumField() {
		field := t.Field(f)
		tag, _, _ := strings.Cut(field.Tag.Get("yaml"), ",")
		if tag == "-" {
			continue // not a setting: token values come from the environment only
		}
		if field.Type.Kind() == reflect.Struct {
			keys = append(keys, leafKeys(field.Type, joinKey(prefix, tag))...)
			continue
		}
		keys = append(keys, joinKey(prefix, tag))
	}
	return keys
}

// TestEverySettingFromEachSource checks that the settings table covers every
// field of Config and that each setting, given through YAML, the
// environment or a flag, lands in the same field.
func TestEverySettingFromEachSource(t *testing.T) {
	samples := map[string]struct{ text, yaml string }{
		"data_dir":                       {"/srv/flowscope", "/srv/flowscope"},
		"http_addr":                      {"0.0.0.0:18686", "0.0.0.0:18686"},
		"shutdown_timeout":               {"45s", "45s"},
		"receivers.otlp_grpc_addr":       {"0.0.0.0:14317", "0.0.0.0:14317"},
		"receivers.otlp_http_addr":       {"[::1]:14318", `"[::1]:14318"`},
		"receivers.zipkin_addr":          {":19411", `":19411"`},
		"dashboards_dir":                 {"testdata", "testdata"},
		"policies":                       {"testdata", "testdata"},
		"max_import_bytes":               {"1048576", "1048576"},
		"memory_budget":                  {"1073741824", "1073741824"},
		"receivers.max_request_bytes":    {"1048576", "1048576"},
		"store.retention":                {"72h", "72h"},
		"store.queue_bytes":              {"33554432", "33554432"},
		"store.sync_freelist":            {"true", "true"},
		"correlation.keys":               {"a.id, b.id", "[a.id, b.id]"},
		"log.level":                      {"error", "error"},
		"log.format":                     {"json", "json"},
		"aggregation.enabled":            {"false", "false"},
		"aggregation.significant_digits": {"3", "3"},
		"aggregation.max_latency":        {"2m", "2m"},
		"aggregation.edge_wait":          {"30s", "30s"},
		"aggregation.max_pending":        {"5000", "5000"},
		"aggregation.retention_10s":      {"12h", "12h"},
		"aggregation.retention_1m":       {"240h", "240h"},
		"aggregation.retention_1h":       {"4320h", "4320h"},
		"alerting.rules":                 {"testdata", "testdata"},
		"alerting.interval":              {"5s", "5s"},
		"alerting.external_url":          {"https://flowscope.example:8443", "https://flowscope.example:8443"},
		"alerting.notify.alertmanager":   {"http://127.0.0.1:9093,http://127.0.0.2:9093", "[http://127.0.0.1:9093, http://127.0.0.2:9093]"},
		"alerting.notify.webhooks":       {"http://127.0.0.1:5001/hook", "[{url: http://127.0.0.1:5001/hook}]"},
		"synthetics.checks":              {"testdata", "testdata"},
		"synthetics.retention":           {"72h", "72h"},
		"synthetics.correlation_header":  {"X-Request-ID", "X-Request-ID"},
		"synthetics.max_concurrent":      {"4", "4"},
		"synthetics.export_url":          {"http://127.0.0.1:4318/v1/traces", "http://127.0.0.1:4318/v1/traces"},
		"red_metrics.buckets":            {"10ms, 1s,2.5s", "[10ms, 1s, 2.5s]"},
		"red_metrics.quantiles":          {"0.5,0.95, 0.999", "[0.5, 0.95, 0.999]"},
		"red_metrics.quantile_window":    {"5m", "5m"},
		"red_metrics.max_series":         {"5000", "5000"},
		"node.name":                      {"node-2", "node-2"},
		"query.peers":                    {"http://10.0.0.1:8686,dns+flowscope.svc:8686", "[http://10.0.0.1:8686, dns+flowscope.svc:8686]"},
		"query.peers_file":               {"testdata/full.yml", "testdata/full.yml"},
		"query.peer_timeout":             {"3s", "3s"},
		"query.refresh_interval":         {"1m", "1m"},
		"query.peer_token_file":          {"testdata/full.yml", "testdata/full.yml"},
		"security.tls.cert_file":         {"testdata/full.yml", "testdata/full.yml"},
		"security.tls.key_file":          {"testdata/custom.yml", "testdata/custom.yml"},
		"security.tls.client_ca_file":    {"testdata/empty.yml", "testdata/empty.yml"},
		"security.ingest_token_file":     {"testdata/full.yml", "testdata/full.yml"},
		"security.read_token_file":       {"testdata/full.yml", "testdata/full.yml"},
		"security.write_token_file":      {"testdata/full.yml", "testdata/full.yml"},
		"security.allowed_hosts":         {"flowscope.example,10.0.0.7", "[flowscope.example, 10.0.0.7]"},
		"security.cors_allowed_origins":  {"https://grafana.example:3000", "[https://grafana.example:3000]"},
	}
	// Settings valid only with others, given as flags with every source.
	companions := map[string][]string{
		"security.tls.cert_file":      {"--tls-key-file=testdata/custom.yml"},
		"security.tls.key_file":       {"--tls-cert-file=testdata/full.yml"},
		"security.tls.client_ca_file": {"--tls-cert-file=testdata/full.yml", "--tls-key-file=testdata/custom.yml"},
	}

	var tableKeys []string
	flags, envs := map[string]bool{}, map[string]bool{}
	for _, s := range settings {
		tableKeys = append(tableKeys, s.key)
		if flags[s.flag] || envs[s.env] {
			t.Errorf("setting %s reuses flag --%s or env %s", s.key, s.flag, s.env)
		}
		flags[s.flag], envs[s.env] = true, true
	}
	fields := leafKeys(reflect.TypeFor[Config](), "")
	slices.Sort(tableKeys)
	slices.Sort(fields)
	if !slices.Equal(tableKeys, fields) {
		t.Fatalf("settings table keys %v\ndiffer from Config fields %v", tableKeys, fields)
	}

	for _, s := range settings {
		t.Run(s.key, func(t *testing.T) {
			sample, ok := samples[s.key]
			if !ok {
				t.Fatalf("no sample value for %s", s.key)
			}
			// Build "a:\n  b: value" from the dotted key.
			parts := strings.Split(s.key, ".")
			var y strings.Builder
			for i, p := range parts {
				y.WriteString(strings.Repeat("  ", i) + p + ":")
				if i == len(parts)-1 {
					y.WriteString(" " + sample.yaml)
				}
				y.WriteString("\n")
			}
			file := filepath.Join(t.TempDir(), "c.yml")
			writeFile(t, file, y.String())

			more := companions[s.key]
			fromFile, err := Load(append([]string{"--config", file}, more...), noEnv, io.Discard)
			if err != nil {
				t.Fatalf("yaml %q: %v", y.String(), err)
			}
			fromEnv, err := Load(more, envMap(map[string]string{s.env: sample.text}), io.Discard)
			if err != nil {
				t.Fatalf("env: %v", err)
			}
			fromFlag, err := Load(append([]string{"--" + s.flag + "=" + sample.text}, more...), noEnv, io.Discard)
			if err != nil {
				t.Fatalf("flag: %v", err)
			}
			if reflect.DeepEqual(fromFlag, Default()) {
				t.Errorf("flag --%s=%s left the default unchanged", s.flag, sample.text)
			}
			if !reflect.DeepEqual(fromFile, fromFlag) || !reflect.DeepEqual(fromEnv, fromFlag) {
				t.Errorf("sources disagree:\nfile %+v\nenv  %+v\nflag %+v", fromFile, fromEnv, fromFlag)
			}
		})
	}
}

func TestCorrelationKeysList(t *testing.T) {
	f := func(arg string, want []string) {
		t.Helper()
		c, err := Load([]string{"--correlation-keys=" + arg}, noEnv, io.Discard)
		if err != nil {
			t.Fatalf("--correlation-keys=%q: %v", arg, err)
		}
		if !slices.Equal(c.Correlation.Keys, want) || c.Correlation.Keys == nil {
			t.Errorf("--correlation-keys=%q gave %q, want %q", arg, c.Correlation.Keys, want)
		}
	}
	f("", []string{})
	f("a", []string{"a"})
	f(" a , b ,,c,", []string{"a", "b", "c"})
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "unknown flag", args: []string{"--no-such-flag"}, want: "flag provided but not defined: --no-such-flag"},
		{name: "bad duration flag", args: []string{"--retention=week"}, want: `invalid value "week" for flag --retention: invalid duration "week"`},
		{name: "bad bytes flag", args: []string{"--max-request-bytes", "16M"}, want: `invalid value "16M" for flag --max-request-bytes: invalid byte count "16M"`},
		{name: "flag without value", args: []string{"--data-dir"}, want: "flag needs an argument: --data-dir"},
		{name: "positional argument", args: []string{"extra"}, want: `unexpected argument "extra"`},
		{name: "bad env", env: map[string]string{"FLOWSCOPE_SHUTDOWN_TIMEOUT": "10"}, want: `environment variable FLOWSCOPE_SHUTDOWN_TIMEOUT: invalid duration "10"`},
		{name: "invalid value from env", env: map[string]string{"FLOWSCOPE_LOG_FORMAT": "xml"}, want: `invalid configuration: log.format = "xml"`},
		{name: "missing file", args: []string{"--config", "testdata/no-such-file.yml"}, want: "read config file: open testdata/no-such-file.yml: no such file or directory"},
		{
			name: "several problems", args: []string{"--retention=1s", "--log-level=loud"},
			want: "invalid configuration: store.retention = 1s: must be at least 1m (flag --retention, env FLOWSCOPE_RETENTION)\n" +
				`log.level = "loud": must be one of debug, info, warn, error`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := Load(tt.args, envMap(tt.env), &stderr)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
			if stderr.Len() > 0 {
				t.Errorf("Load wrote to stderr on error: %q", stderr.String())
			}
		})
	}
}

// TestFlagError checks that flag errors spell flags as help does, with two
// dashes, however the command line spelled them.
func TestFlagError(t *testing.T) {
	f := func(msg, want string) {
		t.Helper()
		if got := FlagError(errors.New(msg)).Error(); got != want {
			t.Errorf("FlagError(%q) = %q, want %q", msg, got, want)
		}
	}
	f("flag provided but not defined: -retentoin", "flag provided but not defined: --retentoin")
	f("flag needs an argument: -data-dir", "flag needs an argument: --data-dir")
	f(`invalid value "week" for flag -retention: invalid duration "week"`, `invalid value "week" for flag --retention: invalid duration "week"`)
	// The value may look like anything, a flag message included.
	f(`invalid value " for flag -x" for flag -retention: bad`, `invalid value " for flag -x" for flag --retention: bad`)
	f(`invalid boolean value "maybe" for -json: parse error`, `invalid boolean value "maybe" for --json: parse error`)
	// Messages that name no flag after a dash are kept.
	f("bad flag syntax: ---x", "bad flag syntax: ---x")
	f("invalid boolean flag json: parse error", "invalid boolean flag json: parse error")
	f("something else: -x", "something else: -x")

	if FlagError(nil) != nil || FlagError(flag.ErrHelp) != flag.ErrHelp {
		t.Error("FlagError changes nil or flag.ErrHelp")
	}
	// What Load returns for each spelling on the command line.
	for _, arg := range []string{"-retention=week", "--retention=week"} {
		_, err := Load([]string{arg}, noEnv, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "for flag --retention:") {
			t.Errorf("Load(%s) error = %v, want it to name --retention", arg, err)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		var stderr bytes.Buffer
		_, err := Load([]string{"--data-dir=x", arg}, noEnv, &stderr)
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("Load(%s) error = %v, want flag.ErrHelp", arg, err)
		}
		help := stderr.String()
		for _, want := range []string{"Usage: collector serve", "--config PATH", "FLOWSCOPE_CONFIG", "--help"} {
			if !strings.Contains(help, want) {
				t.Errorf("help lacks %q", want)
			}
		}
		def := Default()
		for _, s := range settings {
			want := "  --" + s.flag + " " + s.arg + "\n        " + s.usage + "\n        env " + s.env +
				", yaml " + s.key + ", default \"" + s.display(&def) + "\"\n"
			if !strings.Contains(help, want) {
				t.Errorf("help lacks the entry for %s:\n%s", s.key, want)
			}
		}
		if t.Failed() {
			t.Logf("help:\n%s", help)
			return
		}
	}
	// Spot-check defaults written the way users write them.
	var b strings.Builder
	PrintUsage(&b)
	for _, want := range []string{`default "168h"`, `default "30s"`, `default "16777216"`, `default "correlation.id,correlation_id,`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("help lacks %s", want)
		}
	}
}

func TestValidateAddresses(t *testing.T) {
	f := func(grpc, httpAddr string, wantErr string) {
		t.Helper()
		c := Default()
		c.Receivers.OTLPGRPCAddr = grpc
		c.HTTPAddr = httpAddr
		err := c.Validate()
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("(%q, %q): unexpected error %v", grpc, httpAddr, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("(%q, %q): error %v, want it to contain %q", grpc, httpAddr, err, wantErr)
		}
	}
	f("127.0.0.1:0", "127.0.0.1:0", "") // each port-0 listener gets its own port
	f(":4317", "localhost:8686", "")    // empty host: every interface
	f("[::1]:4317", "[::]:8686", "")    // IPv6
	f("", "127.0.0.1:8686", "must be host:port")
	f("127.0.0.1:65536", "127.0.0.1:8686", `port "65536" must be a number from 0 to 65535`)
	f("::1:4317", "127.0.0.1:8686", "must be host:port")
	f("my host:4317", "127.0.0.1:8686", `host "my host" contains spaces`)
	f("127.0.0.1:8686", "127.0.0.1:8686", "http_addr = \"127.0.0.1:8686\": already used by receivers.otlp_grpc_addr")
}

func TestValidateLimits(t *testing.T) {
	c := Default()
	c.Store.Retention = MinRetention
	c.Store.QueueBytes = c.Receivers.MaxRequestBytes
	if err := c.Validate(); err != nil {
		t.Errorf("the smallest accepted retention and queue: %v", err)
	}
	c.Receivers.MaxRequestBytes = -1
	c.Store.QueueBytes = -1
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "receivers.max_request_bytes = -1: must be positive") ||
		!strings.Contains(err.Error(), "store.queue_bytes = -1: must be positive") {
		t.Errorf("negative sizes: %v", err)
	}
	c = Default()
	c.Correlation.Keys = []string{" padded"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `entry " padded" has leading or trailing spaces`) {
		t.Errorf("padded key: %v", err)
	}
	c.Correlation.Keys = nil
	if err := c.Validate(); err != nil {
		t.Errorf("no correlation keys: %v", err)
	}
}

func TestValidateREDMetrics(t *testing.T) {
	ms := time.Millisecond
	tooMany := make([]time.Duration, MaxREDBuckets+1)
	for i := range tooMany {
		tooMany[i] = time.Duration(i+1) * ms
	}
	tests := []struct {
		name   string
		change func(r *REDMetrics)
		want   string // "" for valid
	}{
		{name: "defaults", change: func(*REDMetrics) {}},
		{name: "one bucket, no quantiles, smallest window and series", change: func(r *REDMetrics) {
			r.Buckets, r.Quantiles, r.QuantileWindow, r.MaxSeries = []time.Duration{ms}, []float64{}, 10*time.Second, 1
		}},
		{name: "64 buckets", change: func(r *REDMetrics) { r.Buckets = tooMany[:MaxREDBuckets] }},
		{name: "no buckets", change: func(r *REDMetrics) { r.Buckets = nil },
			want: "red_metrics.buckets = []: must list 1 to 64 bucket bounds (flag --red-buckets, env FLOWSCOPE_RED_BUCKETS)"},
		{name: "65 buckets", change: func(r *REDMetrics) { r.Buckets = tooMany }, want: "must list 1 to 64 bucket bounds"},
		{name: "zero bound", change: func(r *REDMetrics) { r.Buckets = []time.Duration{0, ms} },
			want: "red_metrics.buckets = [0s,1ms]: bound 0s is not positive"},
		{name: "negative bound", change: func(r *REDMetrics) { r.Buckets = []time.Duration{-ms} }, want: "bound -1ms is not positive"},
		{name: "duplicate bound", change: func(r *REDMetrics) { r.Buckets = []time.Duration{ms, ms} }, want: "bounds must ascend: 1ms follows 1ms"},
		{name: "descending", change: func(r *REDMetrics) { r.Buckets = []time.Duration{time.Second, ms} }, want: "bounds must ascend: 1ms follows 1s"},
		{name: "quantile 0", change: func(r *REDMetrics) { r.Quantiles = []float64{0} }, want: "quantile 0 is not in (0, 1)"},
		{name: "quantile 1", change: func(r *REDMetrics) { r.Quantiles = []float64{0.5, 1} }, want: "red_metrics.quantiles = [0.5,1]: quantile 1 is not in (0, 1)"},
		{name: "percentile", change: func(r *REDMetrics) { r.Quantiles = []float64{99} }, want: "write 0.99 for p99"},
		{name: "quantile twice", change: func(r *REDMetrics) { r.Quantiles = []float64{0.9, 0.5, 0.9} }, want: "quantile 0.9 is listed twice"},
		{name: "17 quantiles", change: func(r *REDMetrics) {
			r.Quantiles = nil
			for i := range MaxREDQuantiles + 1 {
				r.Quantiles = append(r.Quantiles, float64(i+1)/100)
			}
		}, want: "must list at most 16 quantiles"},
		{name: "short window", change: func(r *REDMetrics) { r.QuantileWindow = 9 * time.Second },
			want: "red_metrics.quantile_window = 9s: must be at least 10s (flag --red-quantile-window, env FLOWSCOPE_RED_QUANTILE_WINDOW)"},
		{name: "no series", change: func(r *REDMetrics) { r.MaxSeries = 0 },
			want: "red_metrics.max_series = 0: must be at least 1 (flag --red-max-series, env FLOWSCOPE_RED_MAX_SERIES)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(&c.REDMetrics)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestREDMetricsFlags checks how the list flags read their values.
func TestREDMetricsFlags(t *testing.T) {
	c, err := Load([]string{"--red-buckets= 1ms,2.5s ,, 10s", "--red-quantiles=0.25, 0.999"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.REDMetrics.Buckets, []time.Duration{time.Millisecond, 2500 * time.Millisecond, 10 * time.Second}) ||
		!slices.Equal(c.REDMetrics.Quantiles, []float64{0.25, 0.999}) {
		t.Errorf("got %+v", c.REDMetrics)
	}
	c, err = Load([]string{"--red-quantiles="}, noEnv, io.Discard)
	if err != nil || c.REDMetrics.Quantiles == nil || len(c.REDMetrics.Quantiles) != 0 {
		t.Errorf("--red-quantiles= gave %v, %v; want no quantiles", c.REDMetrics.Quantiles, err)
	}
	for _, tt := range []struct{ arg, want string }{
		{"--red-buckets=5ms,1", `invalid value "5ms,1" for flag --red-buckets: invalid duration "1" in the list`},
		{"--red-quantiles=p99", `invalid value "p99" for flag --red-quantiles: invalid quantile "p99" in the list`},
		{"--red-buckets=", `red_metrics.buckets = []: must list 1 to 64 bucket bounds`},
	} {
		if _, err := Load([]string{tt.arg}, noEnv, io.Discard); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.arg, err, tt.want)
		}
	}
	var b strings.Builder
	PrintUsage(&b)
	if !strings.Contains(b.String(), `default "5ms,10ms,25ms,50ms,100ms,250ms,500ms,1s,2.5s,5s,10s"`) ||
		!strings.Contains(b.String(), `default "0.5,0.9,0.99"`) {
		t.Error("help lacks the red_metrics defaults")
	}
}

func TestNewLogger(t *testing.T) {
	c := Default()
	c.Log = Logging{Level: "warn", Format: "json"}
	var buf bytes.Buffer
	logger := c.NewLogger(&buf)
	logger.Info("hidden")
	logger.Warn("shown", "component", "test")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("json log line %q: %v", buf.String(), err)
	}
	if line["msg"] != "shown" || line["level"] != "WARN" || line["component"] != "test" {
		t.Errorf("json log line = %v", line)
	}

	buf.Reset()
	c.Log = Logging{Level: "debug", Format: "text"}
	c.NewLogger(&buf).Debug("hello", "k", "v")
	if got := buf.String(); !strings.Contains(got, "level=DEBUG msg=hello k=v") {
		t.Errorf("text log line = %q", got)
	}

	buf.Reset()
	c.Log = Logging{} // invalid: falls back to info and text
	logger = c.NewLogger(&buf)
	logger.Debug("hidden")
	logger.Info("shown")
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, "level=INFO msg=shown") {
		t.Errorf("fallback log = %q", got)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
