package sandbox

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// echoUpper answers each connection with its input upper-cased, after the client
// half-closes (a grader's way).
func echoUpper(t *testing.T, ln net.Listener) {
	t.Helper()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				c.Write([]byte(strings.ToUpper(string(b))))
			}()
		}
	}()
}

// lineUpper answers each line at once, upper-cased.
func lineUpper(t *testing.T, ln net.Listener) {
	t.Helper()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(strings.ToUpper(l)))
				}
			}()
		}
	}()
}

func TestARelayPassesAHalfCloseAndTheAnswerBack(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	echoUpper(t, up)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	r := NewRelay(ln, DialTCP(up.Addr().String()))
	defer r.Close()
	c, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("iamat x\n"))
	c.(*net.TCPConn).CloseWrite()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "IAMAT X\n" {
		t.Fatalf("through the relay: %q, %v", b, err)
	}
}

func TestARelayWhoseUpstreamIsDownClosesAtOnce(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := dead.Addr().String()
	dead.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	r := NewRelay(ln, DialTCP(addr))
	defer r.Close()
	c, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a relay to nothing", n)
	}
}

func TestCloseEndsTheConnectionsInFlight(t *testing.T) {
	up, _ := net.Listen("tcp", "127.0.0.1:0")
	defer up.Close()
	echoUpper(t, up) // never answers while the client keeps writing
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	r := NewRelay(ln, DialTCP(up.Addr().String()))
	c, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	done := make(chan struct{})
	go func() { r.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a connection in flight")
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the client's connection is still open")
	}
}

func TestTheRunCAsCertificateVerifiesForGooglesNamesOnly(t *testing.T) {
	ca, err := NewCA(GoogleHosts)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.PEM) {
		t.Fatal("the CA's PEM does not parse")
	}
	leaf, err := x509.ParseCertificate(ca.Server.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range GoogleHosts {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: pool}); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: pool}); err == nil {
		t.Error("the certificate verifies for example.com")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: GoogleHosts[0]}); err == nil {
		t.Error("the certificate verifies without the run's CA")
	}
}

// needRoot skips a test that makes namespaces where it cannot.
func needRoot(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("network namespaces need root on Linux")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (iproute2)")
	}
}

func TestASandboxHasOnlyALoopbackAndGooglesNamesAreItsOwn(t *testing.T) {
	needRoot(t)
	ca, err := NewCA(GoogleHosts)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := Create(Spec{Hostname: "Hill", CAPEM: ca.PEM})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ns.Remove(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat("/etc/netns/" + ns.Name); err == nil {
			t.Error("Remove left its /etc files")
		}
	}()
	out, err := ns.Command("ip", "-o", "link").CombinedOutput()
	if err != nil || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 || !strings.Contains(string(out), "lo:") {
		t.Errorf("links inside: %v\n%s", err, out)
	}
	out, err = ns.Command("getent", "hosts", "maps.googleapis.com").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "127.0.0.1") {
		t.Errorf("maps.googleapis.com inside: %v %q", err, out)
	}
	if out, err := ns.Command("getent", "hosts", "example.com").CombinedOutput(); err == nil {
		t.Errorf("example.com resolves inside: %q", out)
	}
	out, err = ns.Command("cat", "/etc/ssl/certs/ca-certificates.crt").CombinedOutput()
	if err != nil || string(out) != string(ca.PEM) {
		t.Errorf("the trusted bundle inside is not the run's CA: %v", err)
	}

	// A TLS relay inside on 443, to a plain server outside: a client inside that trusts
	// the system bundle reaches it by Google's name.
	up, _ := net.Listen("tcp", "127.0.0.1:0")
	defer up.Close()
	lineUpper(t, up)
	ln, err := ns.Listen("127.0.0.1:443")
	if err != nil {
		t.Fatal(err)
	}
	r := NewRelay(tls.NewListener(ln, ca.TLSConfig()), DialTCP(up.Addr().String()))
	defer r.Close()
	// A Python client inside, trusting only the system's bundle (which ip netns exec
	// makes the run's CA), reaches it by Google's name.
	if py, err := exec.LookPath("python3"); err == nil {
		script := `import socket, ssl
raw = socket.create_connection(("places.googleapis.com", 443), timeout=5)
c = ssl.create_default_context().wrap_socket(raw, server_hostname="places.googleapis.com")
c.sendall(b"from python\n")
print(c.makefile().readline(), end="")
`
		out, err := ns.Command(py, "-c", script).CombinedOutput()
		if err != nil || string(out) != "FROM PYTHON\n" {
			t.Errorf("a Python TLS client inside: %v\n%s", err, out)
		}
	}
	// The relay passes bytes both ways: a client inside sends, half-closes, reads.
	conn, err := ns.Dialer("127.0.0.1:443")(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	tc := tls.Client(conn, &tls.Config{ServerName: "places.googleapis.com", RootCAs: pool})
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := tc.Write([]byte("searchnearby\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(tc).ReadString('\n')
	if err != nil || line != "SEARCHNEARBY\n" {
		t.Fatalf("through the TLS relay inside: %q, %v", line, err)
	}
	// Outside, nothing listens on the port inside.
	if c, err := net.DialTimeout("tcp", "127.0.0.1:443", time.Second); err == nil {
		c.Close()
		t.Log("note: something listens on 127.0.0.1:443 outside the sandbox (not ours)")
	}
}

func TestSweepRemovesTheNamespacesOfARunThatIsGone(t *testing.T) {
	needRoot(t)
	// A process that has exited: its pid names the stale namespace.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	name := Prefix + "-" + strconv.Itoa(cmd.Process.Pid) + "-1"
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	os.MkdirAll("/etc/netns/"+name, 0o755)
	n, err := Sweep()
	if err != nil || n < 1 {
		t.Fatalf("Sweep: %d, %v", n, err)
	}
	if _, err := os.Stat("/run/netns/" + name); err == nil {
		exec.Command("ip", "netns", "del", name).Run()
		t.Fatal("the stale namespace is still there")
	}
	if _, err := os.Stat("/etc/netns/" + name); err == nil {
		t.Fatal("its /etc files are still there")
	}
}

func TestFirstOfDialsInTurnUntilOneAnswers(t *testing.T) {
	live, _ := net.Listen("tcp", "127.0.0.1:0")
	defer live.Close()
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	c, err := FirstOf(DialTCP(deadAddr), DialTCP(live.Addr().String()))(context.Background())
	if err != nil {
		t.Fatalf("FirstOf(dead, live): %v", err)
	}
	if c.RemoteAddr().String() != live.Addr().String() {
		t.Errorf("connected to %s, want %s", c.RemoteAddr(), live.Addr())
	}
	c.Close()
	if _, err := FirstOf(DialTCP(deadAddr))(context.Background()); err == nil {
		t.Error("FirstOf(dead): no error")
	}
	if got := Loopback(11795); got[0] != "127.0.0.1:11795" || got[1] != "[::1]:11795" {
		t.Errorf("Loopback(11795) = %v", got)
	}
}
