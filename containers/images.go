package containers

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/moby/client"

	"github.com/herdchaos/herd/chaos"
)

// Images are the tags of the images a run uses.
type Images struct {
	Herd      string // our herd (also serves the Places emulator)
	Toxiproxy string
}

// The toxiproxy image: the server built from the pinned module, on scratch.
const toxiproxyDockerfile = `FROM scratch
COPY toxiproxy-server /toxiproxy-server
USER 65532:65532
ENTRYPOINT ["/toxiproxy-server", "-host=0.0.0.0"]
`

// buildContext is the files of one image build, by their path in the context.
type buildContext map[string][]byte

// tag is the image name with a tag made from the context's content, so an unchanged tree
// reuses the image and a changed one builds a new one.
func (bc buildContext) tag(repo string) string {
	h := sha256.New()
	names := make([]string, 0, len(bc))
	for n := range bc {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(bc[n]))
		h.Write(bc[n])
	}
	return repo + ":" + hex.EncodeToString(h.Sum(nil))[:16]
}

func (bc buildContext) tar() (*bytes.Buffer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(bc))
	for n := range bc {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		mode := int64(0o644)
		if !strings.HasSuffix(n, "Dockerfile") && !strings.HasSuffix(n, ".crt") && !strings.HasSuffix(n, ".keep") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: mode, Size: int64(len(bc[n])), Uid: 0, Gid: 0}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(bc[n]); err != nil {
			return nil, err
		}
	}
	return &buf, tw.Close()
}

// BuildImages compiles the binaries on the host and builds both images offline, unless
// images with the same content tag exist already. overlay ("" for none) goes to the
// herd's go build.
// progress gets one line per step.
func BuildImages(ctx context.Context, cli *client.Client, overlay string, progress func(string)) (Images, error) {
	root, err := chaos.SourceRoot(ctx)
	if err != nil {
		return Images{}, err
	}
	dir, err := os.MkdirTemp("", "herd-chaos-build-")
	if err != nil {
		return Images{}, err
	}
	defer os.RemoveAll(dir)

	progress("compiling the herd and toxiproxy (static, linux)")
	herdBin := filepath.Join(dir, "herd")
	toxiBin := filepath.Join(dir, "toxiproxy-server")
	errc := make(chan error, 2)
	static := []string{"CGO_ENABLED=0", "GOOS=linux"}
	go func() { errc <- chaos.GoBuild(ctx, root, "./cmd/herd", herdBin, static, overlay) }()
	go func() {
		errc <- chaos.GoBuild(ctx, root, "github.com/Shopify/toxiproxy/v2/cmd/server", toxiBin, static, "")
	}()
	for range 2 {
		if err := <-errc; err != nil {
			return Images{}, err
		}
	}
	read := func(p string) ([]byte, error) { return os.ReadFile(p) }
	herdCtx := buildContext{}
	for name, src := range map[string]string{
		"Dockerfile":                    filepath.Join(root, "Dockerfile"),
		"bin/linux/herd":                herdBin,
		"containers/image/data/.keep":   filepath.Join(root, "containers", "image", "data", ".keep"),
		"bin/linux/ca-certificates.crt": "/etc/ssl/certs/ca-certificates.crt",
	} {
		b, err := read(src)
		if err != nil && name == "bin/linux/ca-certificates.crt" {
			b, err = nil, nil // no CA bundle on this host: the image still serves offline
		}
		if err != nil {
			return Images{}, err
		}
		herdCtx[name] = b
	}
	toxi, err := read(toxiBin)
	if err != nil {
		return Images{}, err
	}
	toxiCtx := buildContext{"Dockerfile": []byte(toxiproxyDockerfile), "toxiproxy-server": toxi}

	imgs := Images{Herd: herdCtx.tag("herd-chaos/herd"), Toxiproxy: toxiCtx.tag("herd-chaos/toxiproxy")}
	for _, b := range []struct {
		tag string
		bc  buildContext
	}{{imgs.Herd, herdCtx}, {imgs.Toxiproxy, toxiCtx}} {
		if _, err := cli.ImageInspect(ctx, b.tag); err == nil {
			progress("image " + b.tag + " is up to date")
			continue
		}
		progress("building image " + b.tag)
		if err := buildImage(ctx, cli, b.bc, b.tag); err != nil {
			return Images{}, err
		}
	}
	return imgs, nil
}

func buildImage(ctx context.Context, cli *client.Client, bc buildContext, tag string) error {
	body, err := bc.tar()
	if err != nil {
		return err
	}
	res, err := cli.ImageBuild(ctx, body, client.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true,
		Labels: map[string]string{labelImage: "true"},
	})
	if err != nil {
		return fmt.Errorf("building %s: %w", tag, err)
	}
	defer res.Body.Close()
	// The build answers a stream of JSON messages; an error is one of them.
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var lastLines []string
	for sc.Scan() {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) == nil {
			if msg.Error != "" {
				return fmt.Errorf("building %s: %s\n%s", tag, msg.Error, strings.Join(lastLines, ""))
			}
			lastLines = append(lastLines, msg.Stream)
			if len(lastLines) > 20 {
				lastLines = lastLines[1:]
			}
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("building %s: %w", tag, err)
	}
	return nil
}
