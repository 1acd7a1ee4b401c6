// Package testcert makes the certificates a test's TLS servers and
// clients use: a CA made for the test, a server certificate for
// 127.0.0.1 and localhost, and a client certificate, all signed by it.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The files Write makes, in its directory.
const (
	CA         = "ca.pem"
	ServerCert = "server.pem"
	ServerKey  = "server.key"
	ClientCert = "client.pem" // common name and DNS name sstar-client
	ClientKey  = "client.key"
)

// Write makes a CA, a server certificate and a client certificate
// signed by it, valid for a day, and writes them and their keys (PEM,
// PKCS #8) to dir; it fails the test if it cannot.
func Write(t testing.TB, dir string) {
	t.Helper()
	if err := Make(dir); err != nil {
		t.Fatal(err)
	}
}

// Make is Write for callers without a test: a harness starting a
// server. It returns what went wrong.
func Make(dir string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sstar test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := write(dir, CA, "CERTIFICATE", caDER); err != nil {
		return err
	}
	leaf := func(serial int64, name string, ips []net.IP, usage x509.ExtKeyUsage, certFile, keyFile string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			DNSNames:     []string{name},
			IPAddresses:  ips,
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if err := write(dir, certFile, "CERTIFICATE", der); err != nil {
			return err
		}
		return write(dir, keyFile, "PRIVATE KEY", keyDER)
	}
	if err := leaf(2, "localhost", []net.IP{net.IPv4(127, 0, 0, 1)}, x509.ExtKeyUsageServerAuth, ServerCert, ServerKey); err != nil {
		return err
	}
	return leaf(3, "sstar-client", nil, x509.ExtKeyUsageClientAuth, ClientCert, ClientKey)
}

func write(dir, name, typ string, der []byte) error {
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	return os.WriteFile(filepath.Join(dir, name), b, 0o600)
}
