package otelcoltest

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestConfig(t *testing.T) {
	got := Config("127.0.0.1:4317", []string{"10.0.0.2:4317", "10.0.0.3:4317"}, 4, 5000)
	var doc struct {
		Exporters struct {
			LB struct {
				RoutingKey string `yaml:"routing_key"`
				Resolver   struct {
					Static struct {
						Hostnames []string `yaml:"hostnames"`
					} `yaml:"static"`
				} `yaml:"resolver"`
				Protocol struct {
					OTLP struct {
						Queue struct {
							Consumers int `yaml:"num_consumers"`
							Size      int `yaml:"queue_size"`
						} `yaml:"sending_queue"`
					} `yaml:"otlp"`
				} `yaml:"protocol"`
			} `yaml:"load_balancing"`
		} `yaml:"exporters"`
	}
	if err := yaml.Unmarshal([]byte(got), &doc); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, got)
	}
	lb := doc.Exporters.LB
	if lb.RoutingKey != "traceID" || strings.Join(lb.Resolver.Static.Hostnames, ",") != "10.0.0.2:4317,10.0.0.3:4317" ||
		lb.Protocol.OTLP.Queue.Consumers != 4 || lb.Protocol.OTLP.Queue.Size != 5000 {
		t.Errorf("config:\n%s", got)
	}
}
