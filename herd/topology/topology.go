// Package topology describes a herd: its servers, their client ports and the links between
// them, the default five of docs/PROTOCOL.md, and the config file that sets any other.
package topology

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/herdchaos/herd/herd/proto"
)

// Server is one server of the herd.
type Server struct {
	Name string `yaml:"name" json:"name"`
	// Listen is the client (and peer) address it listens on, e.g. ":12000".
	Listen string `yaml:"listen" json:"listen"`
	// Peers maps each neighbour to the address this server dials it at; the chaos
	// framework points these at Toxiproxy. The keys are the server's neighbours.
	Peers map[string]string `yaml:"peers" json:"peers"`
	// Metrics is an optional address for Prometheus /metrics.
	Metrics string `yaml:"metrics,omitempty" json:"metrics,omitempty"`
	// PlacesURL overrides the herd's Places URL for this server (its own proxy, say).
	PlacesURL string `yaml:"places_url,omitempty" json:"places_url,omitempty"`
}

// Neighbours are the server's neighbours, sorted.
func (s Server) Neighbours() []string {
	out := make([]string, 0, len(s.Peers))
	for name := range s.Peers {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Config is a whole herd as a config file gives it (YAML, or JSON, which is YAML too).
type Config struct {
	Servers []Server `yaml:"servers" json:"servers"`
	// PlacesURL is the Nearby Search endpoint; empty means the in-process emulator data
	// unless a key is set in the environment, when it means Google's endpoint.
	PlacesURL string `yaml:"places_url,omitempty" json:"places_url,omitempty"`
	// PlacesAPI is the Places API the herd asks: "legacy" (Nearby Search, the default when
	// empty) or "new" (Places API (New) searchNearby, PlacesURL being its base URL).
	PlacesAPI string `yaml:"places_api,omitempty" json:"places_api,omitempty"`
	// PlacesTimeout bounds each Places request ("3s").
	PlacesTimeout Duration `yaml:"places_timeout,omitempty" json:"places_timeout,omitempty"`
	// LogDir holds one log file per server, NAME.log.
	LogDir string `yaml:"log_dir,omitempty" json:"log_dir,omitempty"`
}

// Duration reads "3s"-style strings from YAML and JSON.
type Duration struct{ time.Duration }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	d.Duration = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalJSON implements json.Unmarshaler ("3s", or nanoseconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	if s, err := strconv.Unquote(string(b)); err == nil {
		v, err := time.ParseDuration(s)
		d.Duration = v
		return err
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	d.Duration = time.Duration(n)
	return err
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(d.String())), nil }

// DefaultNames are the five servers of docs/PROTOCOL.md in order.
var DefaultNames = []string{"Goloman", "Hands", "Holiday", "Welsh", "Wilkes"}

// DefaultLinks are the five servers' undirected links.
var DefaultLinks = [][2]string{
	{"Goloman", "Hands"}, {"Goloman", "Holiday"}, {"Goloman", "Wilkes"},
	{"Hands", "Wilkes"}, {"Holiday", "Welsh"}, {"Holiday", "Wilkes"},
}

// DefaultPort is the client port of each default server.
var DefaultPort = map[string]int{"Goloman": 12000, "Hands": 12001, "Holiday": 12002, "Welsh": 12003, "Wilkes": 12004}

// Default is the five-server herd on its default ports, peers dialled on host.
func Default(host string) Config {
	return Build(DefaultNames, DefaultLinks, func(name string) string {
		return net.JoinHostPort(host, strconv.Itoa(DefaultPort[name]))
	}, func(name string) string {
		return ":" + strconv.Itoa(DefaultPort[name])
	})
}

// Build makes a config from names and undirected links; addr gives the address peers
// dial a server at, listen the address it listens on.
func Build(names []string, links [][2]string, addr, listen func(string) string) Config {
	var c Config
	for _, n := range names {
		c.Servers = append(c.Servers, Server{Name: n, Listen: listen(n), Peers: map[string]string{}})
	}
	for _, l := range links {
		c.Server(l[0]).Peers[l[1]] = addr(l[1])
		c.Server(l[1]).Peers[l[0]] = addr(l[0])
	}
	return c
}

// Grid is a rows x cols grid herd named "r<i>c<j>", a neighbour to each side.
func Grid(rows, cols int) (names []string, links [][2]string) {
	name := func(i, j int) string { return fmt.Sprintf("r%dc%d", i, j) }
	for i := range rows {
		for j := range cols {
			names = append(names, name(i, j))
			if j+1 < cols {
				links = append(links, [2]string{name(i, j), name(i, j+1)})
			}
			if i+1 < rows {
				links = append(links, [2]string{name(i, j), name(i+1, j)})
			}
		}
	}
	return names, links
}

// Server returns the named server, or nil.
func (c *Config) Server(name string) *Server {
	for i := range c.Servers {
		if c.Servers[i].Name == name {
			return &c.Servers[i]
		}
	}
	return nil
}

// Names are the servers' names in config order.
func (c *Config) Names() []string {
	out := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		out[i] = s.Name
	}
	return out
}

// Links are the undirected links, each once, sorted.
func (c *Config) Links() [][2]string {
	var out [][2]string
	for _, s := range c.Servers {
		for _, p := range s.Neighbours() {
			if s.Name < p {
				out = append(out, [2]string{s.Name, p})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i][0] < out[j][0] || (out[i][0] == out[j][0] && out[i][1] < out[j][1])
	})
	return out
}

// Validate checks names, addresses and that every link is listed by both its ends.
func (c *Config) Validate() error {
	if len(c.Servers) == 0 {
		return errors.New("no servers")
	}
	if err := CheckPlacesAPI(c.PlacesAPI); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, s := range c.Servers {
		if err := proto.CheckName(s.Name); err != nil {
			return fmt.Errorf("server %q: %w", s.Name, err)
		}
		if seen[s.Name] {
			return fmt.Errorf("server %q is listed twice", s.Name)
		}
		seen[s.Name] = true
		if _, _, err := net.SplitHostPort(s.Listen); err != nil {
			return fmt.Errorf("server %s: listen address %q: %w", s.Name, s.Listen, err)
		}
	}
	for _, s := range c.Servers {
		for _, p := range s.Neighbours() {
			if p == s.Name {
				return fmt.Errorf("server %s lists itself as a peer", s.Name)
			}
			other := c.Server(p)
			if other == nil {
				return fmt.Errorf("server %s: peer %q is not a server of the herd", s.Name, p)
			}
			if _, ok := other.Peers[s.Name]; !ok {
				return fmt.Errorf("link %s-%s: %s lists %s but not the other way round (links are bidirectional)", s.Name, p, s.Name, p)
			}
			if _, _, err := net.SplitHostPort(s.Peers[p]); err != nil {
				return fmt.Errorf("server %s: address of peer %s %q: %w", s.Name, p, s.Peers[p], err)
			}
		}
	}
	return nil
}

// PlacesAPIs are the values places_api may take ("" is legacy).
var PlacesAPIs = []string{"legacy", "new"}

// CheckPlacesAPI checks a places_api value.
func CheckPlacesAPI(api string) error {
	if api != "" && !slices.Contains(PlacesAPIs, api) {
		return fmt.Errorf("places_api %q: want %s", api, strings.Join(PlacesAPIs, " or "))
	}
	return nil
}

// Load reads and validates a config file (YAML or JSON). Unknown fields are errors, so a
// typo does not silently fall back to a default.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, err
	}
	defer f.Close()
	var c Config
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Clone is a deep copy.
func (c Config) Clone() Config {
	out := c
	out.Servers = slices.Clone(c.Servers)
	for i := range out.Servers {
		peers := map[string]string{}
		for k, v := range c.Servers[i].Peers {
			peers[k] = v
		}
		out.Servers[i].Peers = peers
	}
	return out
}
