package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/herdchaos/herd/local/sandbox"
)

// relayFlags collects repeated LISTEN=TARGET relays.
type relayFlags [][2]string

func (r *relayFlags) String() string { return fmt.Sprint(*r) }

func (r *relayFlags) Set(v string) error {
	listen, target, ok := strings.Cut(v, "=")
	if !ok || listen == "" || target == "" {
		return fmt.Errorf("want LISTEN=TARGET, got %q", v)
	}
	*r = append(*r, [2]string{listen, target})
	return nil
}

// hold holds a server's network namespace until stopped (the chaos framework runs one per
// server, like a pod's pause container, so a crashed server's address answers RST) and,
// for a herd that dials its neighbours on loopback at fixed ports, relays those ports to
// the links' proxies, and Google's Places ports (TLS) to the Places proxy.
func hold(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("hold", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var plain, secure relayFlags
	fs.Var(&plain, "relay", "LISTEN=TARGET[,TARGET...]: relay connections at LISTEN to the first TARGET that answers (repeatable)")
	fs.Var(&secure, "tls-relay", "LISTEN=TARGET: the same, speaking TLS at LISTEN with --tls-cert and --tls-key (repeatable)")
	certFile := fs.String("tls-cert", "", "the certificate chain (PEM) of --tls-relay")
	keyFile := fs.String("tls-key", "", "its private key (PEM)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cfg *tls.Config
	if len(secure) > 0 {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return fmt.Errorf("--tls-relay: %w", err)
		}
		cfg = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
	}
	var relays []*sandbox.Relay
	defer func() {
		for _, r := range relays {
			r.Close()
		}
	}()
	start := func(r [2]string, cfg *tls.Config) error {
		ln, err := net.Listen("tcp", r[0])
		if err != nil {
			return fmt.Errorf("relay %s: %w", r[0], err)
		}
		if cfg != nil {
			ln = tls.NewListener(ln, cfg)
		}
		var dials []func(context.Context) (net.Conn, error)
		for _, t := range strings.Split(r[1], ",") {
			dials = append(dials, sandbox.DialTCP(t))
		}
		relays = append(relays, sandbox.NewRelay(ln, sandbox.FirstOf(dials...)))
		return nil
	}
	for _, r := range plain {
		if err := start(r, nil); err != nil {
			return err
		}
	}
	for _, r := range secure {
		if err := start(r, cfg); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}
