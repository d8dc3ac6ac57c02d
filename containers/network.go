package containers

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	dnetwork "github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
)

// createNetwork makes the run's network on a free /24 of 10.213.0.0/16, trying another
// when Docker says one overlaps a network that exists.
func (h *Herd) createNetwork(ctx context.Context) error {
	start := (os.Getpid() + int(time.Now().UnixNano()/1e6)) % 250
	var lastErr error
	for i := range 250 {
		third := (start + i) % 250
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(third), 0}), 24)
		gw := netip.AddrFrom4([4]byte{10, 213, byte(third), 1})
		n, err := network.New(ctx, network.WithLabels(h.labels()),
			network.WithIPAM(&dnetwork.IPAM{Driver: "default", Config: []dnetwork.IPAMConfig{{Subnet: subnet, Gateway: gw}}}))
		if err == nil {
			h.net, h.subnet = n, subnet
			return nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "overlap") {
			break
		}
	}
	return fmt.Errorf("network: %w", lastErr)
}

// ip is host number n on the run's subnet.
func (h *Herd) ip(n int) netip.Addr {
	a := h.subnet.Addr().As4()
	a[3] = byte(n)
	return netip.AddrFrom4(a)
}

func (h *Herd) nodeIP(name string) netip.Addr {
	return h.ip(hostFirstNode + slices.Index(h.cfg.Names(), name))
}

func (h *Herd) labels() map[string]string {
	host, _ := os.Hostname()
	return map[string]string{labelManaged: "true", labelRun: h.RunID, labelPID: strconv.Itoa(h.ownerPID), labelHost: host}
}

var notAlias = regexp.MustCompile(`[^a-z0-9-]+`)

// alias is a server's DNS name on the run's network.
func alias(name string) string {
	return "node-" + notAlias.ReplaceAllString(strings.ToLower(name), "-")
}

func (h *Herd) request(image string, port string, aliasName string, ip netip.Addr) testcontainers.ContainerRequest {
	p := dnetwork.MustParsePort(port)
	netName := h.net.Name
	return testcontainers.ContainerRequest{
		EndpointSettingsModifier: func(eps map[string]*dnetwork.EndpointSettings) {
			if ep := eps[netName]; ep != nil {
				ep.IPAMConfig = &dnetwork.EndpointIPAMConfig{IPv4Address: ip}
			}
		},
		Image:          image,
		ExposedPorts:   []string{port},
		Labels:         h.labels(),
		Networks:       []string{h.net.Name},
		NetworkAliases: map[string][]string{h.net.Name: {aliasName}},
		HostConfigModifier: func(hc *container.HostConfig) {
			// Reachable from this machine only.
			hc.PortBindings = dnetwork.PortMap{p: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "0"}}}
		},
	}
}

func (h *Herd) mapped(ctx context.Context, c testcontainers.Container, port string) (string, error) {
	p, err := c.MappedPort(ctx, port)
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + p.Port(), nil
}
