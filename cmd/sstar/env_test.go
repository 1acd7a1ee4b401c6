package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"runtime/metrics"
	"time"
)

// undoEnvChild is the command undo-env-child of the environment story: it
// cleans the runtime's environment as main does, then prints what the
// runtime and crypto/tls do now, for the story to compare with their
// defaults.
func undoEnvChild() {
	cleanRuntimeEnvironment(os.Stderr)
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}, {Name: "/sched/gomaxprocs:threads"}}
	metrics.Read(s)
	fmt.Printf("gogc=%d\n", s[0].Value.Uint64())
	fmt.Printf("gomemlimit=%d\n", s[1].Value.Uint64())
	fmt.Printf("gomaxprocs=%d\n", s[2].Value.Uint64())
	fmt.Printf("GODEBUG=%q\n", os.Getenv("GODEBUG"))
	fmt.Printf("panic(nil) recovers %s\n", recoverNil())
	if err := rsaKeyExchange(); err != nil {
		fmt.Printf("RSA key exchange refused: %v\n", err)
	} else {
		fmt.Println("RSA key exchange accepted")
	}
}

// recoverNil reports the type of what recover returns after panic(nil):
// *runtime.PanicNilError by default, nothing under GODEBUG=panicnil=1.
func recoverNil() (typ string) {
	defer func() { typ = fmt.Sprintf("%T", recover()) }()
	panic(nil)
}

// rsaKeyExchange makes a TLS 1.2 handshake with a server that offers only
// RSA key exchange, which crypto/tls clients refuse by default and accept
// under GODEBUG=tlsrsakex=1.
func rsaKeyExchange() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"server"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	c, s := net.Pipe()
	server := tls.Server(s, &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256},
		MaxVersion:   tls.VersionTLS12,
	})
	go func() { server.Handshake(); s.Close() }()
	pool := x509.NewCertPool()
	cert, _ := x509.ParseCertificate(der)
	pool.AddCert(cert)
	client := tls.Client(c, &tls.Config{ServerName: "server", RootCAs: pool, MaxVersion: tls.VersionTLS12})
	defer client.Close()
	return client.Handshake()
}
