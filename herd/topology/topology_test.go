package topology

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultIsTheProtocolsFiveServerHerd(t *testing.T) {
	c := Default("127.0.0.1")
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Goloman": "[Hands Holiday Wilkes]", "Hands": "[Goloman Wilkes]",
		"Holiday": "[Goloman Welsh Wilkes]", "Welsh": "[Holiday]", "Wilkes": "[Goloman Hands Holiday]",
	}
	for name, nb := range want {
		s := c.Server(name)
		if got := strings.Join(s.Neighbours(), " "); "["+got+"]" != nb {
			t.Errorf("%s neighbours %s, want %s", name, got, nb)
		}
	}
	if c.Server("Goloman").Listen != ":12000" || c.Server("Wilkes").Peers["Hands"] != "127.0.0.1:12001" {
		t.Fatal("default ports wrong")
	}
	if len(c.Links()) != 6 {
		t.Fatalf("links %v", c.Links())
	}
}

func TestGridHasTheRightLinks(t *testing.T) {
	names, links := Grid(5, 5)
	if len(names) != 25 || len(links) != 40 {
		t.Fatalf("%d names, %d links", len(names), len(links))
	}
}

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "herd.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadYAMLAndJSON(t *testing.T) {
	y := write(t, `
places_url: http://127.0.0.1:9000
places_timeout: 2s
servers:
  - name: A
    listen: 127.0.0.1:13000
    peers: {B: 127.0.0.1:13001}
  - name: B
    listen: 127.0.0.1:13001
    peers: {A: 127.0.0.1:13000}
`)
	c, err := Load(y)
	if err != nil {
		t.Fatal(err)
	}
	if c.PlacesTimeout.Seconds() != 2 || c.Server("B").Peers["A"] != "127.0.0.1:13000" {
		t.Fatalf("%+v", c)
	}
	j := write(t, `{"servers":[{"name":"A","listen":":1","peers":{}}],"places_timeout":"1500ms"}`)
	if c, err := Load(j); err != nil || c.PlacesTimeout.Milliseconds() != 1500 {
		t.Fatalf("%v %+v", err, c)
	}
}

func TestLoadRejectsBadConfigsClearly(t *testing.T) {
	cases := map[string]string{
		"one-way link":  "servers: [{name: A, listen: ':1', peers: {B: 'h:2'}}, {name: B, listen: ':2', peers: {}}]",
		"unknown peer":  "servers: [{name: A, listen: ':1', peers: {C: 'h:2'}}]",
		"twice":         "servers: [{name: A, listen: ':1'}, {name: A, listen: ':2'}]",
		"bad listen":    "servers: [{name: A, listen: 'nope'}]",
		"unknown field": "servers: [{name: A, listen: ':1', neighbors: [B]}]",
		"bad duration":  "places_timeout: soon\nservers: [{name: A, listen: ':1'}]",
		"space in name": "servers: [{name: 'A B', listen: ':1'}]",
		"self":          "servers: [{name: A, listen: ':1', peers: {A: 'h:1'}}]",
		"empty":         "servers: []",
	}
	for what, body := range cases {
		if _, err := Load(write(t, body)); err == nil {
			t.Errorf("%s: accepted", what)
		} else {
			t.Logf("%s: %v", what, err)
		}
	}
}

func TestPlacesAPIIsLoadedAndChecked(t *testing.T) {
	for _, api := range []string{"legacy", "new"} {
		c, err := Load(write(t, "places_api: "+api+"\nservers: [{name: A, listen: ':1'}]"))
		if err != nil || c.PlacesAPI != api {
			t.Errorf("places_api %s: %q %v", api, c.PlacesAPI, err)
		}
	}
	if c, err := Load(write(t, `{"places_api": "new", "servers": [{"name": "A", "listen": ":1"}]}`)); err != nil || c.PlacesAPI != "new" {
		t.Errorf("JSON places_api: %q %v", c.PlacesAPI, err)
	}
	if c, err := Load(write(t, "servers: [{name: A, listen: ':1'}]")); err != nil || c.PlacesAPI != "" {
		t.Errorf("no places_api: %q %v", c.PlacesAPI, err)
	}
	for _, bad := range []string{"New", "v1", "both"} {
		_, err := Load(write(t, "places_api: "+bad+"\nservers: [{name: A, listen: ':1'}]"))
		if err == nil || !strings.Contains(err.Error(), "places_api") {
			t.Errorf("places_api %s: %v", bad, err)
		}
	}
}
