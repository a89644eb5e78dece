package config

import (
	"io"
	"strings"
	"testing"
)

// TestSecuritySettings checks the security settings' validation and that
// token values come from the environment only.
func TestSecuritySettings(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // "" for valid
	}{
		{"cert without key", []string{"--tls-cert-file=testdata/full.yml"}, nil,
			`security.tls.cert_file = "testdata/full.yml": needs security.tls.key_file with it`},
		{"key without cert", []string{"--tls-key-file=testdata/full.yml"}, nil, `security.tls.cert_file = "": needs security.tls.key_file`},
		{"client CA without cert", []string{"--tls-client-ca-file=testdata/full.yml"}, nil,
			`security.tls.client_ca_file = "testdata/full.yml": needs security.tls.cert_file and key_file`},
		{"missing cert file", []string{"--tls-cert-file=testdata/nope.pem", "--tls-key-file=testdata/full.yml"}, nil,
			`security.tls.cert_file = "testdata/nope.pem": must be an existing file`},
		{"token file is a directory", []string{"--read-token-file=testdata"}, nil, `security.read_token_file = "testdata": must be an existing file`},
		{"token file and env", []string{"--ingest-token-file=testdata/full.yml"}, map[string]string{"FLOWSCOPE_INGEST_TOKEN": "x"},
			`security.ingest_token_file = "testdata/full.yml": and FLOWSCOPE_INGEST_TOKEN are both set`},
		{"host with port", []string{"--allowed-hosts=flowscope.example:8686"}, nil, `entry "flowscope.example:8686" must be a host name`},
		{"host with scheme", []string{"--allowed-hosts=https://flowscope.example"}, nil, `entry "https://flowscope.example" must be a host name`},
		{"origin with path", []string{"--cors-allowed-origins=https://grafana.example/x"}, nil, `entry "https://grafana.example/x" must be an origin`},
		{"origin without scheme", []string{"--cors-allowed-origins=grafana.example"}, nil, `entry "grafana.example" must be an origin`},
		{"valid", []string{"--tls-cert-file=testdata/full.yml", "--tls-key-file=testdata/custom.yml", "--tls-client-ca-file=testdata/empty.yml",
			"--allowed-hosts=*,flowscope.example,10.0.0.7,::1", "--cors-allowed-origins=https://grafana.example:3000,http://[::1]:3000"},
			map[string]string{"FLOWSCOPE_READ_TOKEN": "r", "FLOWSCOPE_WRITE_TOKEN": "w", "FLOWSCOPE_INGEST_TOKEN": "i"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, envMap(tt.env), io.Discard)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Security.ReadToken != "r" || c.Security.WriteToken != "w" || c.Security.IngestToken != "i" {
					t.Errorf("tokens from the environment: %+v", c.Security)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
	// Token values are never flags nor config file keys.
	if _, err := Load([]string{"--read-token=x"}, noEnv, io.Discard); err == nil {
		t.Error("--read-token is accepted as a flag")
	}
	if err := decodeYAML(&Config{}, []byte("security:\n  read_token: x\n")); err == nil || !strings.Contains(err.Error(), `unknown key "security.read_token"`) {
		t.Errorf("read_token in the config file: %v", err)
	}
	if err := decodeYAML(&Config{}, []byte("security:\n  \"-\": x\n")); err == nil {
		t.Error(`the key "-" is accepted in the config file`)
	}
}
