package containers

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

func (h *Herd) startEmulator(ctx context.Context) error {
	req := h.request(h.Images.Herd, emulatorPort, placesAlias, h.ip(hostPlaces))
	req.Cmd = []string{"places", "--listen", ":8080"}
	req.WaitingFor = onLoopback{wait.ForHTTP("/healthz").WithPort(emulatorPort).
		WithStartupTimeout(30 * time.Second).WithPollInterval(25 * time.Millisecond)}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{Logger: slogAdapter{h.opts.Logger}, ContainerRequest: req, Started: true})
	if err != nil {
		return fmt.Errorf("places emulator container: %w", err)
	}
	addr, err := h.mapped(ctx, c, emulatorPort)
	if err != nil {
		return err
	}
	h.placesURL = "http://" + addr
	return nil
}

// SetPlacesStatus implements chaos.Backend.
func (h *Herd) SetPlacesStatus(ctx context.Context, status string) error {
	return httpOK(ctx, http.MethodPost, h.placesURL+"/emulator/status?status="+status)
}
