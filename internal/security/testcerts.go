package security

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TestCerts names the PEM files written by WriteTestCerts. It is for tests.
type TestCerts struct {
	CAFile         string         // the CA certificate, which signed the two below
	CertFile       string         // the server certificate
	KeyFile        string         // the server key
	ClientCertFile string         // a client certificate (for mutual TLS)
	ClientKeyFile  string         // its key
	CAPool         *x509.CertPool // holds the CA certificate (a client's RootCAs)
}

// WriteTestCerts is for tests: it writes to dir a new CA, a server
// certificate for hosts (IP SANs for addresses, DNS SANs for names;
// "localhost", "127.0.0.1" and "::1" when hosts is empty) and a client
// certificate, both signed by the CA, all ECDSA P-256 and valid for a day.
// Each call makes a new CA.
func WriteTestCerts(dir string, hosts ...string) (TestCerts, error) {
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	tc := TestCerts{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem"),
		ClientCertFile: filepath.Join(dir, "client.pem"), ClientKeyFile: filepath.Join(dir, "client-key.pem"),
		CAPool: x509.NewCertPool(),
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "flowscope test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	ca, caKey, err := writeTestCert(caTmpl, nil, nil, tc.CAFile, "")
	if err != nil {
		return TestCerts{}, err
	}
	tc.CAPool.AddCert(ca)
	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "flowscope test server"},
		NotBefore:   caTmpl.NotBefore,
		NotAfter:    caTmpl.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			server.IPAddresses = append(server.IPAddresses, ip)
		} else {
			server.DNSNames = append(server.DNSNames, h)
		}
	}
	if _, _, err := writeTestCert(server, ca, caKey, tc.CertFile, tc.KeyFile); err != nil {
		return TestCerts{}, err
	}
	client := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "flowscope test client"},
		NotBefore:   caTmpl.NotBefore,
		NotAfter:    caTmpl.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if _, _, err := writeTestCert(client, ca, caKey, tc.ClientCertFile, tc.ClientKeyFile); err != nil {
		return TestCerts{}, err
	}
	return tc, nil
}

// writeTestCert signs tmpl with a new key (self-signed when parent is nil)
// and writes the certificate to certFile and, unless keyFile is "", the key.
func writeTestCert(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("security: test key: %w", err)
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)); err != nil {
		return nil, nil, fmt.Errorf("security: test serial: %w", err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("security: test certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("security: test certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, nil, fmt.Errorf("security: %w", err)
	}
	if keyFile != "" {
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, nil, fmt.Errorf("security: test key: %w", err)
		}
		if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
			return nil, nil, fmt.Errorf("security: %w", err)
		}
	}
	return cert, key, nil
}
