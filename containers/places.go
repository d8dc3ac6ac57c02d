package containers

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

func (h *Herd) startEmulator(ctx context.Context) error {
	req := h.request(h.Images.Herd, emulatorPort, placesAlias, h.ip(hostPlaces))
	req.Cmd = []string{"places", "--listen", ":8080"}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	if err != nil {
		return fmt.Errorf("places emulator container: %w", err)
	}
	addr, err := h.mapped(ctx, c, emulatorPort)
	if err != nil {
		return err
	}
	h.placesURL = "http://" + addr
	return waitFor(ctx, 30*time.Second, "places emulator", func(ctx context.Context) error {
		return httpOK(ctx, http.MethodGet, h.placesURL+"/healthz")
	})
}

// SetPlacesStatus implements chaos.Backend.
func (h *Herd) SetPlacesStatus(ctx context.Context, status string) error {
	return httpOK(ctx, http.MethodPost, h.placesURL+"/emulator/status?status="+status)
}
