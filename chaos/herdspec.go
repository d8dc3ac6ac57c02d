package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"text/template"

	"gopkg.in/yaml.v3"

	"github.com/herdchaos/herd/herd/topology"
)

// HerdSpec describes the herd implementation under test: how to start one server of it
// and tell it its name, its port, its neighbours' addresses and its Places URL. Our herd
// is the default; any implementation of the protocol that takes those settings (flags,
// environment or a file) can be described in a small YAML file. Every string is a Go
// template over NodeInfo.
type HerdSpec struct {
	Name string `yaml:"name"`
	// Image runs it under the containers backend ("" builds ours from this tree).
	Image string `yaml:"image,omitempty"`
	// Command is the program under the local backend ("" runs ours).
	Command []string `yaml:"command,omitempty"`
	// Args are the arguments of one server; PeerArgs are appended once per neighbour.
	Args     []string `yaml:"args"`
	PeerArgs []string `yaml:"peer_args,omitempty"`
	// Env is added to its environment.
	Env map[string]string `yaml:"env,omitempty"`
	// Files are written before it starts (path -> content), e.g. a config file.
	Files map[string]string `yaml:"files,omitempty"`
	// Port is the port it listens on inside its container (default 12000).
	Port int `yaml:"port,omitempty"`
	// LogFiles are files to collect as artifacts (path templates).
	LogFiles []string `yaml:"log_files,omitempty"`
	// MetricsPort, if the herd serves Prometheus metrics there, lets the suite count
	// peer messages (herd_peer_messages_sent_total).
	MetricsPort int `yaml:"metrics_port,omitempty"`

	// Servers names the herd's servers, each with the port it listens on when the herd
	// fixes it (0: the framework tells it one). With Links it replaces the default five
	// of docs/PROTOCOL.md; every spec derives its cases from this graph.
	Servers map[string]int `yaml:"servers,omitempty"`
	// Links are the herd's undirected links (pairs of server names).
	Links [][2]string `yaml:"links,omitempty"`
	// Dial is how the herd reaches its neighbours: "" (at the addresses the framework
	// gives it, .Peers) or "loopback" (at localhost:PORT, its neighbour's fixed port, as
	// herds with ports in their source do). With loopback each server runs in a network
	// namespace of its own where the framework relays those ports to the links (the local
	// backend makes one, as root; the containers backend uses the server's holder).
	Dial string `yaml:"dial,omitempty"`
	// Copy are files, relative to the description's folder, copied into each server's
	// working directory before it starts (a config.yml the herd reads from there).
	Copy []string `yaml:"copy,omitempty"`
	// Extensions are the properties beyond docs/PROTOCOL.md's common part that the herd
	// claims (see Extensions in the README): only those are tested on it.
	Extensions []string `yaml:"extensions,omitempty"`

	// Here is the folder of the description file (LoadHerdSpec sets it), {{.Here}}.
	Here string `yaml:"-"`
}

// ExtJSONBytes is the extension of a herd whose WHATSAT JSON is the upstream's bytes, cut
// to the bound, every other byte kept (ours); without it the checkers compare values, with
// the fields in the upstream's order.
const ExtJSONBytes = "json-bytes"

// DialLoopback is HerdSpec.Dial for a herd that dials its neighbours at localhost on
// their fixed ports.
const DialLoopback = "loopback"

// Sandboxed says whether each server needs a network of its own: its neighbours are
// dialled on loopback at fixed ports.
func (s HerdSpec) Sandboxed() bool { return s.Dial == DialLoopback }

// Topology is the herd's graph from the description (ok false: it gives none, so the
// default five). Addresses are left for a backend to fill in.
func (s HerdSpec) Topology() (cfg topology.Config, ok bool, err error) {
	if len(s.Servers) == 0 {
		if len(s.Links) > 0 {
			return cfg, false, fmt.Errorf("herd description: links without servers")
		}
		return cfg, false, nil
	}
	names := sortedKeys(s.Servers)
	for _, l := range s.Links {
		for _, n := range l {
			if _, known := s.Servers[n]; !known {
				return cfg, false, fmt.Errorf("herd description: link %s-%s: no server %q in servers", l[0], l[1], n)
			}
		}
		if l[0] == l[1] {
			return cfg, false, fmt.Errorf("herd description: link %s-%s: a server linked to itself", l[0], l[1])
		}
	}
	port := func(n string) string { return strconv.Itoa(s.Servers[n]) }
	cfg = topology.Build(names, s.Links, func(n string) string { return "127.0.0.1:" + port(n) }, func(n string) string { return ":" + port(n) })
	if err := cfg.Validate(); err != nil {
		return cfg, false, fmt.Errorf("herd description: %w", err)
	}
	return cfg, true, nil
}

// IsOurs says whether the spec is the zero HerdSpec: our herd, built from this tree.
func (s HerdSpec) IsOurs() bool { return len(s.Args) == 0 && len(s.Command) == 0 }

// Claims says whether the herd claims an extension beyond docs/PROTOCOL.md's common part:
// ours (the zero HerdSpec, or OurHerd) every one, a described herd those it lists
// ("all": every one).
func (s HerdSpec) Claims(ext string) bool {
	if s.IsOurs() {
		return true
	}
	return slices.Contains(s.Extensions, ext) || slices.Contains(s.Extensions, "all")
}

// Graph is the herd's graph from the description, or def when it gives none.
func (s HerdSpec) Graph(def topology.Config) (topology.Config, error) {
	cfg, ok, err := s.Topology()
	if err != nil || !ok {
		return def, err
	}
	return cfg, nil
}

// FixedPort is the port the server listens on by the herd's own choice (0: none).
func (s HerdSpec) FixedPort(name string) int { return s.Servers[name] }

// NodeInfo is what a HerdSpec's templates see for one server.
type NodeInfo struct {
	Name   string
	Port   int
	Listen string // the address to listen on: ":PORT" in a container, "127.0.0.1:PORT" locally
	// MetricsListen is where to serve metrics, if the herd does (MetricsPort).
	MetricsListen string
	Peers         []PeerInfo
	PlacesURL     string // the Places endpoint, through this server's own proxy
	LogDir        string
	// WorkDir is the server's working directory; Here the description's folder.
	WorkDir, Here string
	// PlacesKey is a key the Places emulator accepts.
	PlacesKey string
}

// PeerInfo is one neighbour and the address to dial it at (its proxy).
type PeerInfo struct{ Name, Addr string }

// PeersJSON is {"Name": "addr", ...}, for herds that read their peers from JSON.
func (n NodeInfo) PeersJSON() string {
	m := map[string]string{}
	for _, p := range n.Peers {
		m[p.Name] = p.Addr
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// HerdYAML is a config file in our herd's format for this server: the whole herd's
// topology, with this server's listen address and peer addresses filled in.
func (n NodeInfo) HerdYAML(cfg topology.Config) string {
	c := n.HerdConfig(cfg)
	b, _ := yaml.Marshal(&c)
	return string(b)
}

// HerdConfig is cfg as the server n sees it: its own address, its peers' and Places'
// addresses through its proxies, its log folder.
func (n NodeInfo) HerdConfig(cfg topology.Config) topology.Config {
	c := cfg.Clone()
	c.PlacesURL = n.PlacesURL
	c.LogDir = n.LogDir
	for i := range c.Servers {
		s := &c.Servers[i]
		if s.Name == n.Name {
			s.Listen = n.Listen
			for _, p := range n.Peers {
				s.Peers[p.Name] = p.Addr
			}
		}
	}
	return c
}

// OurHerd describes the reference herd (cmd/herd): a config file rendered from the
// topology (so any servers and links work), with this server's address, peers' proxies
// and Places URL in it.
func OurHerd() HerdSpec {
	return HerdSpec{
		Name:        "reference herd",
		Args:        []string{"serve", "{{.Name}}", "--config", "/data/herd.yaml", "--metrics", "{{.MetricsListen}}"},
		Files:       map[string]string{"/data/herd.yaml": "{{herdYAML}}"},
		Port:        12000,
		MetricsPort: 9100,
		LogFiles:    []string{"{{.LogDir}}/{{.Name}}.log"},
		Extensions:  []string{"all"},
	}
}

// LoadHerdSpec reads a herd description.
func LoadHerdSpec(path string) (HerdSpec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return HerdSpec{}, err
	}
	var s HerdSpec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return HerdSpec{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(s.Args) == 0 && len(s.Command) == 0 {
		return HerdSpec{}, fmt.Errorf("%s: a herd description needs args (or a command)", path)
	}
	if s.Dial != "" && s.Dial != DialLoopback {
		return HerdSpec{}, fmt.Errorf("%s: dial: %q: want %q or nothing", path, s.Dial, DialLoopback)
	}
	if _, _, err := s.Topology(); err != nil {
		return HerdSpec{}, fmt.Errorf("%s: %w", path, err)
	}
	if s.Sandboxed() {
		for _, n := range sortedKeys(s.Servers) {
			if s.Servers[n] <= 0 || s.Servers[n] > 65535 {
				return HerdSpec{}, fmt.Errorf("%s: dial: loopback needs a fixed port for every server (%s has %d)", path, n, s.Servers[n])
			}
		}
	}
	if s.Here, err = filepath.Abs(filepath.Dir(path)); err != nil {
		return HerdSpec{}, err
	}
	return s, nil
}

// Rendered is a HerdSpec applied to one server.
type Rendered struct {
	Command  []string
	Args     []string
	Env      map[string]string
	Files    map[string][]byte
	LogFiles []string
}

// Render applies the spec's templates to one server. cfg is the herd's topology (for
// templates that call .HerdYAML).
func (s HerdSpec) Render(n NodeInfo, cfg topology.Config) (Rendered, error) {
	funcs := template.FuncMap{"herdYAML": func() string { return n.HerdYAML(cfg) }}
	exec := func(what, text string, data any) (string, error) {
		t, err := template.New(what).Funcs(funcs).Option("missingkey=error").Parse(text)
		if err != nil {
			return "", fmt.Errorf("herd description, %s: %w", what, err)
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return "", fmt.Errorf("herd description, %s: %w", what, err)
		}
		return b.String(), nil
	}
	var r Rendered
	for i, a := range s.Command {
		v, err := exec(fmt.Sprintf("command[%d]", i), a, n)
		if err != nil {
			return r, err
		}
		r.Command = append(r.Command, v)
	}
	for i, a := range s.Args {
		v, err := exec(fmt.Sprintf("args[%d]", i), a, n)
		if err != nil {
			return r, err
		}
		r.Args = append(r.Args, v)
	}
	for _, p := range n.Peers {
		for i, a := range s.PeerArgs {
			v, err := exec(fmt.Sprintf("peer_args[%d]", i), a, p)
			if err != nil {
				return r, err
			}
			r.Args = append(r.Args, v)
		}
	}
	r.Env = map[string]string{}
	for _, k := range sortedKeys(s.Env) {
		v, err := exec("env "+k, s.Env[k], n)
		if err != nil {
			return r, err
		}
		r.Env[k] = v
	}
	r.Files = map[string][]byte{}
	for _, k := range sortedKeys(s.Files) {
		v, err := exec("files "+k, s.Files[k], n)
		if err != nil {
			return r, err
		}
		r.Files[k] = []byte(v)
	}
	for i, f := range s.LogFiles {
		v, err := exec(fmt.Sprintf("log_files[%d]", i), f, n)
		if err != nil {
			return r, err
		}
		r.LogFiles = append(r.LogFiles, v)
	}
	sort.Strings(r.LogFiles)
	return r, nil
}

// EmulatorKey is the Places key a herd under test is given ({{.PlacesKey}}): the emulator
// answers it (any key but the emulator's denied and over-limit ones would do).
const EmulatorKey = "herd-chaos-emulator-key"
