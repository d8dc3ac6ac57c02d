package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
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
}

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
	b, _ := yaml.Marshal(&c)
	return string(b)
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
	return s, nil
}

// Rendered is a HerdSpec applied to one server.
type Rendered struct {
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
