#!/usr/bin/python3
"""Self-test of the two example herds (herd-a, herd-b): fixtures of the chaos suite.

    /usr/bin/python3 selftest.py [herd-a] [herd-b]      (default: both)

It re-runs itself in user, network and mount namespaces of its own (`unshare -rnm`), so
nothing it does can leave the machine and the herds' fixed ports are free: only a loopback
exists there, /etc/hosts is bind-mounted to send maps.googleapis.com and
places.googleapis.com to 127.0.0.1, and a fake Places server answers there over TLS with
a throwaway CA (SSL_CERT_FILE), as the chaos framework arranges. The herds run unmodified.

For each herd it starts all five servers (working directory under a temporary directory;
logs there) and checks: AT replies (exact diff, fields byte for byte), flooding to every
server, no echo loops, line handling and invalid lines, WHATSAT with the Places JSON cut to
the bound, prompt error answers when Places fails (HTTP 500, no answer, reset, refused),
the JSON-cutting function itself, and the flaw of each herd next to the behaviour that
must stay right:
  herd-a  no resync: a restarted server never learns what it missed;
  herd-b  resync after a restart and after a pause; times compared as floats, so the
          newer of two times apart only in the 9th decimal is ignored.
Exit status 0 when every check gave the expected result.
"""

import asyncio
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from fractions import Fraction

import yaml
from aiohttp import web

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
KEY = "selftest-key"
LOC = "+34.068930-118.445127"

# Per herd: the server restarted in the resync test, and a server that is only reachable
# through it (if any).
CASES = {"herd-a": {"victim": "Singleton", "behind": None},
         "herd-b": {"victim": "Holiday", "behind": "Welsh"}}

failures = []


def check(ok, what):
    print(("  ok    " if ok else "  FAIL  ") + what)
    if not ok:
        failures.append(what)
    return ok


def now9():
    """The time now, seconds with nine decimals, as a string."""
    ns = time.time_ns()
    return f"{ns // 10**9}.{ns % 10**9:09d}"


# ---------------------------------------------------------------- the sandbox

def sandbox(tmp):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    hosts = os.path.join(tmp, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost maps.googleapis.com places.googleapis.com\n")
    subprocess.run(["mount", "--bind", hosts, "/etc/hosts"], check=True)
    ossl = lambda *a: subprocess.run(["openssl", *a], check=True, cwd=tmp, capture_output=True)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "1", "-subj", "/CN=selftest CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr",
         "-subj", "/CN=googleapis")
    with open(os.path.join(tmp, "leaf.ext"), "w") as f:
        f.write("subjectAltName=DNS:maps.googleapis.com,DNS:places.googleapis.com\n"
                "extendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "leaf.pem", "-days", "1", "-extfile", "leaf.ext")
    return os.path.join(tmp, "ca.pem")


class FakePlaces:
    """Both Google endpoints on 127.0.0.1:443. mode: ok, 500, notjson, denied, slow or reset."""

    def __init__(self, tmp):
        import ssl
        self.ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ssl.load_cert_chain(os.path.join(tmp, "leaf.pem"), os.path.join(tmp, "leaf.key"))
        self.mode = "ok"
        self.requests = []
        app = web.Application()
        app.router.add_get("/maps/api/place/nearbysearch/json", self.legacy)
        app.router.add_post("/v1/places:searchNearby", self.new)
        self.runner = web.AppRunner(app)
        self.site = None

    async def start(self):
        if self.runner.server is None:
            await self.runner.setup()
        self.site = web.TCPSite(self.runner, "127.0.0.1", 443, ssl_context=self.ssl)
        await self.site.start()

    async def stop(self):
        await self.site.stop()

    @staticmethod
    def legacy_answer(n=25):
        results = [{"geometry": {"location": {"lat": 34.0 + i / 1000, "lng": -118.4}},
                    "name": f"Place & Co {i}", "place_id": f"id{i}", "types": ["cafe", "food"],
                    "vicinity": "Westwood <LA>"} for i in range(n)]
        text = json.dumps({"html_attributions": [], "next_page_token": "tok", "results": results,
                           "status": "OK"}, indent=3)
        return text.replace("\n", "\n\n", 3) + "\n\n\n"  # blank lines, trailing newlines

    @staticmethod
    def new_answer(n=25):
        places = [{"id": f"id{i}", "formattedAddress": f"{i} Westwood Blvd, Los Angeles",
                   "location": {"latitude": 34.0 + i / 1000, "longitude": -118.4},
                   "displayName": {"text": f"Place & Co {i}", "languageCode": "en"}} for i in range(n)]
        return json.dumps({"places": places}, indent=2).replace("\n", "\n\n", 3) + "\n\n"

    async def misbehave(self, request):
        if self.mode == "500":
            return web.Response(status=500, text="upstream failure")
        if self.mode == "notjson":
            return web.Response(text="<html>oops</html>", content_type="text/html")
        if self.mode == "denied":  # Google's own error answers
            if request.method == "GET":
                return web.json_response({"error_message": "The provided API key is invalid.",
                                          "html_attributions": [], "results": [], "status": "REQUEST_DENIED"})
            return web.json_response({"error": {"code": 403, "message": "API key not valid.",
                                                "status": "PERMISSION_DENIED"}}, status=403)
        if self.mode == "slow":
            await asyncio.sleep(10)
        if self.mode == "reset":
            request.transport.abort()
            await asyncio.sleep(1)
        return None

    async def legacy(self, request):
        self.requests.append(("legacy", dict(request.query), None, None))
        bad = await self.misbehave(request)
        return bad if bad is not None else web.Response(text=self.legacy_answer(), content_type="application/json")

    async def new(self, request):
        body = await request.json()
        self.requests.append(("new", dict(request.query), dict(request.headers), body))
        bad = await self.misbehave(request)
        return bad if bad is not None else web.Response(text=self.new_answer(), content_type="application/json")


# ---------------------------------------------------------------- talking to servers

async def talk(port, data, timeout=10.0):
    """Sends data, half-closes, reads everything (as the graders do)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        writer.write_eof()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def at_ok(out, server, client, location, t, before_ns, after_ns):
    """Is out exactly the AT reply, with a diff that is the receive time minus t?"""
    prefix = b"AT " + server.encode() + b" "
    suffix = b" " + client + b" " + location.encode() + b" " + t.encode() + b"\n"
    if not (out.startswith(prefix) and out.endswith(suffix)):
        return False
    diff = out[len(prefix):len(out) - len(suffix)].decode()
    if not (diff[0] in "+-" and len(diff.split(".")[-1]) == 9 and diff[1:].replace(".", "", 1).isdigit()):
        return False
    ft = Fraction(t)
    lo = Fraction(before_ns, 10**9) - ft - Fraction(1, 100)
    hi = Fraction(after_ns, 10**9) - ft + Fraction(1, 100)
    return lo <= Fraction(diff) <= hi


async def iamat(port, server, client, t=None, location=LOC):
    t = t or now9()
    client = client if isinstance(client, bytes) else client.encode()
    before = time.time_ns()
    out = await talk(port, b"IAMAT " + client + b" " + location.encode() + b" " + t.encode() + b"\n")
    after = time.time_ns()
    return out, at_ok(out, server, client, location, t, before, after), t


async def held(port, client):
    """The AT line a server holds for client (None when it answers '?')."""
    out = await talk(port, b"WHATSAT " + client.encode() + b" 1 1\n")
    return None if out.startswith(b"? ") else out.split(b"\n", 1)[0].decode("latin-1")


async def wait_held(ports, client, want, seconds):
    """Polls until every server in ports holds want (an AT line, or None); returns what they hold."""
    deadline = time.monotonic() + seconds
    while True:
        got = {n: await held(p, client) for n, p in ports.items()}
        if all(v == want for v in got.values()) or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.1)


def split_whatsat(out):
    at, _, rest = out.partition(b"\n")
    return at.decode("latin-1"), rest


# ---------------------------------------------------------------- one herd

class Herd:
    def __init__(self, name, workdir, env):
        self.name = name
        self.dir = os.path.join(HERE, name)
        with open(os.path.join(self.dir, "herd.yaml")) as f:
            self.spec = yaml.safe_load(f)
        self.ports = self.spec["servers"]
        self.links = self.spec["links"]
        self.workdir = workdir
        self.env = env
        self.procs = {}
        os.makedirs(workdir)
        for f in self.spec.get("copy", []):
            shutil.copy(os.path.join(self.dir, f), workdir)

    def neighbours(self, n):
        return [b if a == n else a for a, b in self.links if n in (a, b)]

    def farthest(self):
        best = (-1, None, None)
        for s in self.ports:
            dist, todo = {s: 0}, deque([s])
            while todo:
                x = todo.popleft()
                for y in self.neighbours(x):
                    if y not in dist:
                        dist[y] = dist[x] + 1
                        todo.append(y)
            for t, d in dist.items():
                if d > best[0]:
                    best = (d, s, t)
        return best[1], best[2]

    async def start(self, n):
        self.procs[n] = subprocess.Popen([PY, os.path.join(self.dir, "server.py"), n], cwd=self.workdir,
                                         env=self.env, stdout=subprocess.DEVNULL,
                                         stderr=open(os.path.join(self.workdir, n + ".stderr"), "a"))
        for _ in range(100):
            try:
                _, w = await asyncio.open_connection("127.0.0.1", self.ports[n])
                w.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{n} did not start")

    def kill(self, n):
        p = self.procs.pop(n)
        p.kill()
        p.wait()

    def stop_all(self):
        for n in list(self.procs):
            self.kill(n)

    def log_lines(self, needle):
        count = 0
        for n in self.ports:
            with open(os.path.join(self.workdir, n + ".log"), encoding="utf-8", errors="replace") as f:
                count += sum(1 for line in f if needle in line)
        return count


async def test_herd(name, tmp, ca, fake):
    print(f"== {name}")
    env = dict(os.environ, PLACES_API_KEY=KEY, SSL_CERT_FILE=ca)
    env.pop("SSL_CERT_DIR", None)
    h = Herd(name, os.path.join(tmp, name), env)
    P = h.ports
    first, far = h.farthest()
    try:
        for n in P:
            await h.start(n)
        await asyncio.sleep(0.5)

        # -- IAMAT and flooding
        c = f"kiwi-{name}.cs.ucla.edu"
        out, ok, t = await iamat(P[first], first, c)
        check(ok, f"IAMAT at {first}: exact AT reply {out!r}")
        at = out.decode().rstrip("\n")
        got = await wait_held(P, c, at, 5)
        check(all(v == at for v in got.values()), f"flooding reaches all {len(P)} servers: {got}")
        await asyncio.sleep(1.5)
        peer_msgs = h.log_lines(f" {c} {LOC} {t} ")
        await asyncio.sleep(1.0)
        check(peer_msgs == h.log_lines(f" {c} {LOC} {t} ") and peer_msgs <= 6 * len(h.links),
              f"no echo loop: {peer_msgs} log lines with the update, not growing")

        # -- stale IAMAT: answered, changes nothing
        out, ok, _ = await iamat(P[far], far, c, t=str(int(t.split(".")[0]) - 5) + ".5")
        check(ok, "an older IAMAT is still answered with its own AT line")
        await asyncio.sleep(0.5)
        got = await wait_held(P, c, at, 0)
        check(all(v == at for v in got.values()), "an older IAMAT changes nothing anywhere")

        # -- lines
        port, s = P[far], far
        c2, t2 = f"lines-{name}", now9()
        out = await talk(port, f"\n \t\r\n\f\v \nIAMAT {c2} {LOC} {t2}\r\nFOO bar\r\r\n\nWHATSAT {c2} 10 2\nIAMAT {c2} {LOC} {t2}".encode())
        parts = out.split(b"\n")
        check(parts[0].startswith(f"AT {s} ".encode()) and parts[0].endswith(f" {c2} {LOC} {t2}".encode())
              and parts[1] == b"? FOO bar\r" and out.count(b"}\n\nAT ") == 1
              and out.endswith(f" {c2} {LOC} {t2}\n".encode()),
              f"blank lines ignored, CRLF, several commands in order, EOF without newline: {out[:120]!r}...{out[-90:]!r}")
        for sep in [b" ", b"\t", b"\r", b"\f", b"\v"]:
            cid = f"ws-{name}-{sep[0]}".encode()
            tt = now9().encode()
            out = await talk(port, sep + b"IAMAT" + sep + cid + sep + sep + LOC.encode() + sep + tt + sep + b"\n")
            check(out.startswith(f"AT {s} ".encode()) and out.endswith(b" " + cid + b" " + LOC.encode() + b" " + tt + b"\n"),
                  f"{sep!r} separates fields")
        for odd in [b"\x1c", b"\x1f", b"\x85", "\u2028".encode(), b"\xa0", b"\x00"]:
            line = b"IAMAT odd-" + name.encode() + odd + LOC.encode() + b" " + now9().encode()
            out = await talk(port, line + b"\n")
            check(out == b"? " + line + b"\n", f"{odd!r} is not white space: invalid")
        for cid in [b"\xff\xfe\x80-" + name.encode(), "Zo\u00eb-\u6771\u4eac-\U0001f680".encode(), b"AT", b"IAMAT"]:
            out, ok, tt = await iamat(port, s, cid)
            check(ok, f"client id {cid!r} copied byte for byte")
            w = await talk(port, b"WHATSAT " + cid + b" 2 2\n")
            check(w.startswith(out) and w.endswith(b"}\n\n"), f"WHATSAT {cid!r} answers with that AT line")
        for tt in ["1520023934", "+1520023934.5", "0.000000001", now9() + "4999999999", now9() + "5000000000000000000001",
                   "99999999999999999999.123456789012", "-1.5", "-0.000000001", "-1.0000000005"]:
            out, ok, _ = await iamat(port, s, f"time-{name}-{tt}", t=tt)
            check(ok, f"time {tt}: diff exact, {out.split()[2].decode() if ok else out!r}")
        loc_bad = ["+34-118", "+90.1-118.0", "+0.0+180.5", "34.068930-118.445127", "+34.068930", "+34.0-", "++34.0-118.0", "+3a.0-118.0"]
        time_bad = ["1e9", "nan", "inf", "1_520_023_934", "1520023934.5.1", "+", ".", "1520023934.", ".5", "\uff11\uff15"]
        invalid = ([f"IAMAT x {l} {now9()}" for l in loc_bad] + [f"IAMAT x {LOC} {tt}" for tt in time_bad] +
                   [f"WHATSAT {c} {r} {b}" for r, b in [("50.0000001", "5"), ("0", "5"), ("0.0", "5"), ("-1", "5"), ("1e1", "5"),
                                                        ("nan", "5"), ("10", "0"), ("10", "21"), ("10", "-1"), ("10", "twenty")]] +
                   [f"WHATSAT nobody-{c} 10 5", f"WHATSAT {c} 10", f"WHATSAT {c} 10 5 5", f"whatsat {c} 10 5",
                    at, f"IAMAT {c} {LOC}", f"HELLO", "FOO  bar \t", " \tIAMAT a b", "x" * 4000])
        for line in invalid:
            out = await talk(port, line.encode() + b"\n")
            check(out == b"? " + line.encode() + b"\n", f"invalid: {line[:60]!r} -> {out[:70]!r}")
        out = await talk(port, b"\x00\x01\xff\xfe\nFOO at EOF")
        check(out == b"? \x00\x01\xff\xfe\n? FOO at EOF\n", "invalid bytes and an invalid line at EOF")
        got = await wait_held(P, c, at, 0)
        check(all(v == at for v in got.values()), "invalid lines changed nothing")
        for r, b in [("50", "1"), ("50.0000000", "20"), ("0.0000001", "3"), ("10.5871263", "7")]:
            out = await talk(port, f"WHATSAT {c} {r} {b}\n".encode())
            check(out.startswith(at.encode() + b"\n{"), f"WHATSAT radius {r} bound {b} valid")

        # -- WHATSAT against the fake Places
        fake.requests.clear()
        out = await talk(P[far], f"WHATSAT {c} 10 5\n".encode())
        a, js = split_whatsat(out)
        legacy = name == "herd-a"
        want = json.loads(FakePlaces.legacy_answer() if legacy else FakePlaces.new_answer())
        want["results" if legacy else "places"] = want["results" if legacy else "places"][:5]
        check(a == at and js.endswith(b"}\n\n") and b"\n\n" not in js[:-2] and json.loads(js) == want,
              f"WHATSAT at {far}: the stored AT line, then the JSON cut to 5, then a blank line")
        check(js[:-2] == json.dumps(want, indent=3).encode(), "the JSON is json.dumps(answer, indent=3)")
        if fake.requests:
            kind, query, headers, body = fake.requests[-1]
            if legacy:
                check(query == {"location": "34.068930,-118.445127", "radius": "10000", "key": KEY},
                      f"legacy Nearby Search query {query}")
            else:
                check(headers.get("X-Goog-Api-Key") == KEY and "places." in headers.get("X-Goog-FieldMask", "")
                      and body == {"maxResultCount": 5, "locationRestriction": {"circle": {
                          "center": {"latitude": 34.06893, "longitude": -118.445127}, "radius": 10000.0}}},
                      f"searchNearby request: {body}")
        else:
            check(False, "the fake Places saw the request")

        # -- Places failures: a prompt answer with an error
        for mode in ["500", "notjson", "denied", "slow", "reset", "refused"]:
            fake.mode = mode
            if mode == "refused":
                await fake.stop()
            t0 = time.monotonic()
            out = await talk(P[first], f"WHATSAT {c} 10 5\n".encode(), timeout=15)
            took = time.monotonic() - t0
            if mode == "refused":
                await fake.start()
            fake.mode = "ok"
            a, js = split_whatsat(out)
            try:
                j = json.loads(js)
            except ValueError:
                j = {}
            error_shape = (j.get("status") not in (None, "OK") and j.get("results") == [] and "error_message" in j) if legacy \
                else (isinstance(j.get("error"), dict) and j.get("places") == [])
            check(a == at and js.endswith(b"}\n\n") and error_shape and took < 4.5 and KEY.encode() not in out,
                  f"Places {mode}: answered in {took:.1f} s with {js[:200]!r}")

        # -- the JSON cutting, called directly
        spec = importlib.util.spec_from_file_location(f"server_{name[-1]}", os.path.join(h.dir, "server.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for bound in [1, 3, 20]:
            text = FakePlaces.legacy_answer(25 if bound < 20 else 7) if legacy else FakePlaces.new_answer(25 if bound < 20 else 7)
            cut = mod.trim_places(text, bound)
            j = json.loads(cut)
            n = len(j["results" if legacy else "places"])
            check(n == min(bound, 25 if bound < 20 else 7) and "\n\n" not in cut and not cut.endswith("\n")
                  and list(j) == list(json.loads(text)), f"trim_places(bound {bound}) keeps {n}, squeezed, fields in order")
        check(mod.trim_places('{\n\n"a": "x"}\n\n', 3) == '{\n   "a": "x"\n}', "trim_places of an answer without results")

        # -- newer-wins at full precision
        base = now9()[:-1]
        older, newer = base + "7", base + "8"
        pc = f"precision-{name}"
        out1, ok1, _ = await iamat(P[first], first, pc, t=older)
        await wait_held(P, pc, out1.decode().rstrip("\n"), 5)
        out2, ok2, _ = await iamat(P[first], first, pc, t=newer)
        await asyncio.sleep(1.0)
        got = await held(P[far], pc)
        check(ok1 and ok2, "both IAMATs answered")
        if name == "herd-b":
            check(got == out1.decode().rstrip("\n"),
                  f"FLAW (float compare): {older} then {newer}: the newer is ignored, {far} holds {got}")
        else:
            check(got == out2.decode().rstrip("\n"), f"{older} then {newer}: {far} holds the newer, {got}")
        pc2 = f"precision-rev-{name}"
        out1, _, _ = await iamat(P[first], first, pc2, t=newer)
        await wait_held(P, pc2, out1.decode().rstrip("\n"), 5)
        await iamat(P[far], far, pc2, t=older)
        await asyncio.sleep(1.0)
        got = await wait_held(P, pc2, out1.decode().rstrip("\n"), 0)
        check(all(v == out1.decode().rstrip("\n") for v in got.values()), f"{newer} then {older}: all hold the newer")
        if name == "herd-a":
            pc3 = f"precision26-{name}"
            o, n26 = base + "70000000000000001", base + "70000000000000002"
            await iamat(P[first], first, pc3, t=o)
            out2, _, _ = await iamat(P[far], far, pc3, t=n26)
            got = await wait_held(P, pc3, out2.decode().rstrip("\n"), 5)
            check(all(v == out2.decode().rstrip("\n") for v in got.values()), "times apart in the 26th digit: the newer wins")

        # -- a server that was down
        victim, behind = CASES[name]["victim"], CASES[name]["behind"]
        origin = next(n for n in P if n != victim and n != behind)
        h.kill(victim)
        rc = f"missed-{name}"
        out, ok, _ = await iamat(P[origin], origin, rc)
        rat = out.decode().rstrip("\n")
        others = {n: p for n, p in P.items() if n not in (victim, behind)}
        got = await wait_held(others, rc, rat, 5)
        check(all(v == rat for v in got.values()), f"with {victim} down the others get the update")
        await asyncio.sleep(1.0)
        await h.start(victim)
        watch = {n: P[n] for n in (victim, behind) if n}
        if name == "herd-b":
            got = await wait_held(watch, rc, rat, 5)
            check(all(v == rat for v in got.values()), f"after {victim} restarts, {' and '.join(watch)} catch up: {got}")
            check(await held(P[victim], c) == at, f"the restarted {victim} also relearns the older client {c}")
        else:
            await asyncio.sleep(3)
            got = {n: await held(p, rc) for n, p in watch.items()}
            check(all(v is None for v in got.values()),
                  f"FLAW (no resync): after {victim} restarts it never learns the update it missed: {got}")
            check(await held(P[victim], c) is None, f"FLAW (no resync): the restarted {victim} forgot {c} for good")

        # -- a server that was paused longer than the peers' timeout
        if name == "herd-b":
            os.kill(h.procs[victim].pid, signal.SIGSTOP)
            pc = f"paused-{name}"
            out, _, _ = await iamat(P[origin], origin, pc)
            await asyncio.sleep(4.0)
            os.kill(h.procs[victim].pid, signal.SIGCONT)
            got = await wait_held(watch, pc, out.decode().rstrip("\n"), 6)
            check(all(v == out.decode().rstrip("\n") for v in got.values()), f"after a pause of {victim}: {got}")
        # -- one more update after all that: still everywhere
        out, ok, _ = await iamat(P[far], far, f"final-{name}")
        got = await wait_held(P, f"final-{name}", out.decode().rstrip("\n"), 5)
        check(all(v == out.decode().rstrip("\n") for v in got.values()), "an update after all that reaches everybody")
        for n, p in h.procs.items():
            check(p.poll() is None, f"{n} is still running")
        check(os.path.getsize(os.path.join(h.workdir, first + ".log")) > 0, f"{first}.log is written")
        with open(os.path.join(h.workdir, first + ".log"), errors="replace") as f:
            check(KEY not in f.read(), "the key is not logged")
    finally:
        h.stop_all()
        for n in P:
            err = os.path.join(h.workdir, n + ".stderr")
            if os.path.exists(err) and os.path.getsize(err):
                with open(err) as f:
                    print(f"  stderr of {n}:\n" + f.read()[-2000:])


async def run(herds, tmp):
    ca = sandbox(tmp)
    fake = FakePlaces(tmp)
    await fake.start()
    try:
        for name in herds:
            await test_herd(name, tmp, ca, fake)
    finally:
        await fake.runner.cleanup()


def main():
    herds = sys.argv[1:] or ["herd-a", "herd-b"]
    if os.environ.get("HERD_SELFTEST_SANDBOX") != "1":
        env = dict(os.environ, HERD_SELFTEST_SANDBOX="1")
        os.execvpe("unshare", ["unshare", "-rnm", "--", PY, os.path.abspath(__file__), *herds], env)
    tmp = tempfile.mkdtemp(prefix="herd-selftest-")
    keep = os.environ.get("HERD_SELFTEST_KEEP")
    try:
        asyncio.run(run(herds, tmp))
    finally:
        if keep:
            print("work directory kept:", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(failures)} failed" if failures else "all checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
