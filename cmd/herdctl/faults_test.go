package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herdchaos/herd/chaos"
)

// exampleArgs are valid arguments of each argument form on the default five.
var exampleArgs = map[chaos.Args][]string{
	chaos.ArgsLinks:   {"Goloman->Hands", "Holiday<->Welsh"},
	chaos.ArgsServer:  {"Welsh"},
	chaos.ArgsServers: nil,
	chaos.ArgsGroups:  {"Goloman,Hands,Wilkes", "Holiday,Welsh"},
	chaos.ArgsStatus:  {"HTTP500"},
}

// runHerdctl runs herdctl with args against a state file that does not exist: a fault
// command whose fault is valid gets as far as looking for the herd.
func runHerdctl(t *testing.T, args ...string) error {
	t.Helper()
	var out bytes.Buffer
	root := newRoot(&out, &out)
	root.SetArgs(append(args, "--state", filepath.Join(t.TempDir(), "none.json")))
	return root.Execute()
}

// TestEveryKindHasACommand: every registered kind has a herdctl command, listed in the
// help, whose defaults with example arguments make a valid fault.
func TestEveryKindHasACommand(t *testing.T) {
	var help bytes.Buffer
	root := newRoot(&help, &help)
	root.SetArgs([]string{"--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, kc := range chaos.Commands() {
		if !strings.Contains(help.String(), "\n  "+kc.Name+" ") {
			t.Errorf("herdctl --help does not list %s (kind %s)", kc.Name, kc.Kind)
		}
		args, ok := exampleArgs[kc.Args]
		if !ok {
			t.Fatalf("%s: no example arguments of the form %q", kc.Name, kc.Args)
		}
		err := runHerdctl(t, append([]string{kc.Name}, args...)...)
		if err == nil || !strings.Contains(err.Error(), "no herd is up") {
			t.Errorf("herdctl %s %s: %v, want the fault accepted and no herd found", kc.Name, strings.Join(args, " "), err)
		}
	}
}

func TestFaultCommandsRefuseBadFaults(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"latency", "Goloman->Hands", "--latency", "10ms", "--jitter", "20ms"}, "jitter must be within"},
		{[]string{"slicer", "Goloman->Hands", "--size", "2", "--variation", "2"}, "variation must be within"},
		{[]string{"slow-close", "Goloman->Hands", "--delay", "0s"}, "needs a positive delay"},
		{[]string{"bandwidth", "Goloman->Hands", "--rate", "0"}, "positive rate"},
		{[]string{"cut", "Goloman-Hands"}, "want A->B or A<->B"},
	} {
		err := runHerdctl(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("herdctl %s: %v, want an error saying %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}
