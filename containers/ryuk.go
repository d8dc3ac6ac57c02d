package containers

import (
	"os"
	"sync"

	"github.com/testcontainers/testcontainers-go"
)

// Ryuk, testcontainers-go's garbage collector, is a container whose image this machine
// cannot pull (no registry), and the framework has its own reaper (reaper.go) that does
// its job, so a run turns it off.
//
// testcontainers-go v0.45.0 (go.mod) decides on Ryuk only from its process-wide
// configuration: ~/.testcontainers.properties (ryuk.disabled) and the environment
// (TESTCONTAINERS_RYUK_DISABLED), read once, on first use, and cached for the life of
// the process (internal/config.Read behind a sync.Once; no ProviderOption or request
// field sets it). So the smallest side effect that works is: unless the user set
// TESTCONTAINERS_RYUK_DISABLED, set it to true only around that first read, and unset it
// again; the cached configuration keeps Ryuk off, the environment is as it was. If
// testcontainers-go had read its configuration before (the process used it already), or
// the user set the variable, their choice stands.
//
// The host on which container ports are reached needs no such setting: request binds
// every port on 127.0.0.1 and the framework reaches them there itself (mapped, and
// onLoopback for wait strategies), never through testcontainers' host discovery.
const ryukEnv = "TESTCONTAINERS_RYUK_DISABLED"

var ryukOnce sync.Once

func disableRyuk() {
	ryukOnce.Do(func() {
		if _, set := os.LookupEnv(ryukEnv); !set {
			os.Setenv(ryukEnv, "true")
			defer os.Unsetenv(ryukEnv)
		}
		testcontainers.ReadConfig() // caches the configuration with Ryuk off
	})
}
