package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herdchaos/herd/local/sandbox"
)

func TestHoldRelaysPlainAndTLSPortsUntilStopped(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				l, _ := bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, strings.ToUpper(l))
			}()
		}
	}()
	ca, err := sandbox.NewCA(sandbox.GoogleHosts)
	if err != nil {
		t.Fatal(err)
	}
	chain, key, err := ca.ServerPEM()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cert.pem"), chain, 0o644)
	os.WriteFile(filepath.Join(dir, "key.pem"), key, 0o600)
	plain, secure := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- hold(ctx, []string{"--relay", plain + "=" + up.Addr().String(), "--tls-relay", secure + "=" + up.Addr().String(),
			"--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem")}, io.Discard)
	}()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	ask := func(dial func() (net.Conn, error)) (string, error) {
		c, err := dial()
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "relayed\n")
		return bufio.NewReader(c).ReadString('\n')
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := ask(func() (net.Conn, error) { return net.Dial("tcp", plain) })
		if err == nil && got == "RELAYED\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the plain relay: %q, %v", got, err)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition under a deadline: hold starts
	}
	got, err := ask(func() (net.Conn, error) {
		return tls.Dial("tcp", secure, &tls.Config{ServerName: "places.googleapis.com", RootCAs: pool})
	})
	if err != nil || got != "RELAYED\n" {
		t.Fatalf("the TLS relay by Google's name with the run's CA: %q, %v", got, err)
	}
	if _, err := tls.Dial("tcp", secure, &tls.Config{ServerName: "places.googleapis.com"}); err == nil {
		t.Fatal("the TLS relay's certificate verifies without the run's CA")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("hold: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("hold did not stop")
	}
	if c, err := net.Dial("tcp", plain); err == nil {
		c.Close()
		t.Fatal("the relay still listens after hold stopped")
	}
}

func TestHoldRefusesABadRelay(t *testing.T) {
	for _, args := range [][]string{{"--relay", "127.0.0.1:1"}, {"--relay", "=x"}, {"--tls-relay", freeAddr(t) + "=127.0.0.1:1"}} {
		if err := hold(context.Background(), args, io.Discard); err == nil {
			t.Errorf("hold %v: no error", args)
		}
	}
}
