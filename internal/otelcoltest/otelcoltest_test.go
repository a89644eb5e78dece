package otelcoltest

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"
)

// builtOtelcol is the Collector .ci/build-otelcol builds
// ($FLOWSCOPE_OTELCOL_BIN, else under $FLOWSCOPE_TOOLS_DIR or
// ~/.cache/flowscope); "" when it cannot be named.
func builtOtelcol() string {
	if p := os.Getenv("FLOWSCOPE_OTELCOL_BIN"); p != "" {
		return p
	}
	tools := os.Getenv("FLOWSCOPE_TOOLS_DIR")
	if tools == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		tools = filepath.Join(home, ".cache", "flowscope")
	}
	return filepath.Join(tools, "otelcol-v0.161.0", "otelcol-flowscope")
}

// TestOtelcolConfig renders the Collector's configuration, reads it back
// as YAML, and has the Collector validate it when it is built.
func TestOtelcolConfig(t *testing.T) {
	tests := []struct {
		listen               string
		nodes                []string
		consumers, queue     int
		wantHosts            []string
		wantConsumers, wantQ int
	}{
		{"127.0.0.1:4317", []string{"127.0.0.2:1234"}, 4, 5000, []string{"127.0.0.2:1234"}, 4, 5000},
		{"127.0.0.1:9", []string{"127.0.0.2:1", "127.0.0.3:2", "127.0.0.4:3"}, 16, 20000,
			[]string{"127.0.0.2:1", "127.0.0.3:2", "127.0.0.4:3"}, 16, 20000},
	}
	otelcol := builtOtelcol()
	for _, tc := range tests {
		cfg := Config(tc.listen, tc.nodes, tc.consumers, tc.queue)
		var doc struct {
			Receivers struct {
				OTLP struct {
					Protocols struct {
						GRPC struct {
							Endpoint string `yaml:"endpoint"`
						} `yaml:"grpc"`
					} `yaml:"protocols"`
				} `yaml:"otlp"`
			} `yaml:"receivers"`
			Exporters struct {
				LB struct {
					RoutingKey string `yaml:"routing_key"`
					Protocol   struct {
						OTLP struct {
							Queue struct {
								Consumers int `yaml:"num_consumers"`
								Size      int `yaml:"queue_size"`
							} `yaml:"sending_queue"`
							Retry struct {
								Enabled bool `yaml:"enabled"`
							} `yaml:"retry_on_failure"`
						} `yaml:"otlp"`
					} `yaml:"protocol"`
					Resolver struct {
						Static struct {
							Hostnames []string `yaml:"hostnames"`
						} `yaml:"static"`
					} `yaml:"resolver"`
				} `yaml:"load_balancing"`
			} `yaml:"exporters"`
			Service struct {
				Telemetry struct {
					Metrics struct {
						Level string `yaml:"level"`
					} `yaml:"metrics"`
				} `yaml:"telemetry"`
			} `yaml:"service"`
		}
		if err := yaml.Unmarshal([]byte(cfg), &doc); err != nil {
			t.Fatalf("%v:\n%s", err, cfg)
		}
		lb := doc.Exporters.LB
		if doc.Receivers.OTLP.Protocols.GRPC.Endpoint != tc.listen || lb.RoutingKey != "traceID" ||
			!reflect.DeepEqual(lb.Resolver.Static.Hostnames, tc.wantHosts) ||
			lb.Protocol.OTLP.Queue.Consumers != tc.wantConsumers || lb.Protocol.OTLP.Queue.Size != tc.wantQ ||
			!lb.Protocol.OTLP.Retry.Enabled || doc.Service.Telemetry.Metrics.Level != "none" {
			t.Errorf("unexpected configuration %+v:\n%s", doc, cfg)
		}
		if _, err := os.Stat(otelcol); err != nil {
			continue
		}
		path := filepath.Join(t.TempDir(), "otelcol.yaml")
		os.WriteFile(path, []byte(cfg), 0o644)
		if out, err := exec.Command(otelcol, "validate", "--config", path).CombinedOutput(); err != nil {
			t.Errorf("otelcol validate: %v\n%s\n%s", err, out, cfg)
		}
	}
}
