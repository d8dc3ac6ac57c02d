// Command herd runs one server of the proxy herd, or the Places emulator.
//
//	herd serve NAME [flags]       serve one server of the herd (default: the five of docs/PROTOCOL.md)
//	herd places --listen ADDR     serve the Places Nearby Search emulator (legacy and New APIs)
//	herd hold [--relay L=T]...    do nothing but relay until stopped (the chaos framework runs
//	                              one per server to hold its network namespace, like a pod's
//	                              pause container, so a crashed server's address answers RST;
//	                              for a herd dialling on loopback it relays the ports)
//
// Environment: HERD_PLACES_KEY is the Google Places key (never logged); HERD_SECRET is the
// peer secret (peers must prove it); HERD_LOG_DIR is the default log directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/herdchaos/herd/herd/places"
	"github.com/herdchaos/herd/herd/server"
	"github.com/herdchaos/herd/herd/topology"
)

const usage = `usage:
  herd serve NAME [flags]     run server NAME of the herd (see 'herd serve --help')
  herd places --listen ADDR   run the Places Nearby Search emulator (legacy and New APIs)

The protocol the servers speak (client commands, extensions, peer lines): docs/PROTOCOL.md
`

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], logger, stderr)
	case "places":
		err = emulate(ctx, args[1:], logger, stderr)
	case "hold":
		err = hold(ctx, args[1:], stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stderr, usage)
		return 0
	default:
		err = fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "herd:", err)
		return 2
	}
	return 0
}

// peerFlags collects repeated --peer NAME=ADDR.
type peerFlags map[string]string

func (p peerFlags) String() string { return fmt.Sprint(map[string]string(p)) }
func (p peerFlags) Set(v string) error {
	name, addr, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("want NAME=HOST:PORT, got %q", v)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("peer %s: %w", name, err)
	}
	p[name] = addr
	return nil
}

// parseInterleaved parses flags that may come before or after the positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func serve(ctx context.Context, args []string, logger *slog.Logger, stderr io.Writer) error {
	opts, err := serveOptions(args, logger, stderr)
	if err != nil {
		return err
	}
	srv, err := server.New(opts)
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}

// serveOptions turns serve's arguments, the config file and the environment into the
// server's options.
func serveOptions(args []string, logger *slog.Logger, stderr io.Writer) (server.Options, error) {
	fs := flag.NewFlagSet("herd serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "herd config file (YAML or JSON); default: the five servers of docs/PROTOCOL.md")
	listen := fs.String("listen", "", "address to listen on (overrides the config)")
	peers := peerFlags{}
	fs.Var(peers, "peer", "NAME=HOST:PORT: dial neighbour NAME there (repeatable; overrides the config)")
	placesURL := fs.String("places-url", "", "Places Nearby Search URL; with --places-api new, the API's base URL (default: Google's with HERD_PLACES_KEY set, else the built-in emulator data)")
	placesAPI := fs.String("places-api", "", "Places API to ask: legacy (Nearby Search) or new (Places API (New) searchNearby) (default: the config's places_api, else legacy)")
	placesTimeout := fs.Duration("places-timeout", 0, "timeout of one Places request (default 2s)")
	logDir := fs.String("log-dir", "", "directory of the server's log file NAME.log (default: the config's log_dir, else $HERD_LOG_DIR, else logs)")
	metricsAddr := fs.String("metrics", "", "address to serve Prometheus /metrics on (default: none)")
	heartbeat := fs.Duration("heartbeat", 0, "peer heartbeat interval (default 200ms)")
	deadAfter := fs.Duration("dead-after", 0, "drop a peer link silent this long (default 1.5s)")
	maxConns := fs.Int("max-conns", 0, "maximum client connections (default 10000; neighbours have slots of their own)")
	idleTimeout := fs.Duration("idle-timeout", 0, "close a client connection that sends nothing this long (default 5m)")
	maxLine := fs.Int("max-line", 0, "maximum line length in bytes (default 65536)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: herd serve NAME [flags]\n\nNAME is one of the herd's servers (default herd: %s).\n\n", strings.Join(topology.DefaultNames, ", "))
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return server.Options{}, err
	}
	if len(pos) != 1 {
		fs.Usage()
		return server.Options{}, errors.New("serve takes exactly one server NAME")
	}
	name := pos[0]
	cfg := topology.Default("127.0.0.1")
	if *configPath != "" {
		if cfg, err = topology.Load(*configPath); err != nil {
			return server.Options{}, err
		}
	}
	self := cfg.Server(name)
	if self == nil {
		return server.Options{}, fmt.Errorf("unknown server %q: the herd has %s", name, strings.Join(cfg.Names(), ", "))
	}
	if *listen != "" {
		self.Listen = *listen
	}
	if *metricsAddr != "" {
		self.Metrics = *metricsAddr
	}
	for peer, addr := range peers {
		if _, ok := self.Peers[peer]; !ok {
			return server.Options{}, fmt.Errorf("--peer %s: %s is not a neighbour of %s (neighbours: %s)", peer, peer, name, strings.Join(self.Neighbours(), ", "))
		}
		self.Peers[peer] = addr
	}
	if *placesTimeout > 0 {
		cfg.PlacesTimeout.Duration = *placesTimeout
	}
	if *placesURL != "" {
		self.PlacesURL = *placesURL
	}
	// The Places API: the flag, else the config's places_api, else legacy.
	if *placesAPI != "" {
		if err := topology.CheckPlacesAPI(*placesAPI); err != nil {
			return server.Options{}, fmt.Errorf("--places-api: %w", err)
		}
		cfg.PlacesAPI = *placesAPI
	}
	if cfg.PlacesAPI == "" {
		cfg.PlacesAPI = places.APILegacy
	}
	// The log directory: the flag, else the config's log_dir, else $HERD_LOG_DIR, else logs.
	if *logDir != "" {
		cfg.LogDir = *logDir
	} else if cfg.LogDir == "" {
		cfg.LogDir = envOr("HERD_LOG_DIR", "logs")
	}
	src, err := placesSource(cfg.PlacesAPI, self.PlacesURL, cfg.PlacesURL, cfg.PlacesTimeout.Duration, logger)
	if err != nil {
		return server.Options{}, err
	}
	var secret []byte
	if v := os.Getenv("HERD_SECRET"); v != "" {
		secret = []byte(v)
	}
	return server.Options{
		Name: name, Config: cfg, Places: src, PlacesTimeout: cfg.PlacesTimeout.Duration,
		LogDir: cfg.LogDir, Secret: secret, Logger: logger, Heartbeat: *heartbeat,
		DeadAfter: *deadAfter, MaxConns: *maxConns, MaxLineBytes: *maxLine, IdleTimeout: *idleTimeout,
	}, nil
}

// placesSource is the herd's Places client for api: the server's URL, else the herd's,
// else Google's when HERD_PLACES_KEY is set (the legacy endpoint, or the New API's base
// URL), else the built-in emulator data (offline).
func placesSource(api, serverURL, herdURL string, timeout time.Duration, logger *slog.Logger) (places.Source, error) {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	key := os.Getenv("HERD_PLACES_KEY")
	endpoint := serverURL
	if endpoint == "" {
		endpoint = herdURL
	}
	if endpoint == "" && key == "" {
		logger.Info("no Places URL and no HERD_PLACES_KEY: answering WHATSAT from the built-in emulator data (offline)", "api", api)
		return places.Local{API: api}, nil
	}
	if endpoint == "" {
		endpoint = places.GoogleURL
		if api == places.APINew {
			endpoint = places.GoogleNewBase
		}
	}
	src, err := places.NewHTTPAPI(api, endpoint, key, timeout)
	if err != nil {
		return nil, err
	}
	logger.Info("places upstream", "api", api, "url", src.URL, "timeout", timeout, "key_set", key != "")
	return src, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func emulate(ctx context.Context, args []string, logger *slog.Logger, stderr io.Writer) error {
	fs := flag.NewFlagSet("herd places", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", ":8080", "address to serve the emulator on")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: (&places.Emulator{}).Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	logger.Info("places emulator serving", "listen", ln.Addr().String(), "legacy", "GET "+places.NearbyPath,
		"new", "POST "+places.NewPath, "queries", "GET /emulator/queries?after=N")
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
