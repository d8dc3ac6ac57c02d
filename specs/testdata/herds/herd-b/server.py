#!/usr/bin/env python3
"""CS 131 project: a proxy herd with asyncio.

Usage: python3 server.py NAME
The servers, their ports and their neighbours are read from config.yml in the current
directory. The log goes to NAME.log in the current directory.

Clients send
    IAMAT <client> <location> <time>      ->  AT <server> <diff> <client> <location> <time>
    WHATSAT <client> <radius km> <bound>  ->  the AT line, then the Places JSON
Anything else gets "? <line>".

Between servers (one line per TCP connection, answered with "ACK" once handled):
    AT <origin> <diff> <client> <location> <time> <sender>    a location update
    HELLO <sender>                                            "send me everything you know"
A message that is not acknowledged marks that neighbour as down. While it is down we try it
again every 0.2 s with a HELLO; when it answers, we send it every record we hold (which
covers whatever it missed) and, because of the HELLO, it sends us everything it holds.
At startup every neighbour counts as down, so a restarted server catches up at once.

Places: the Places API (New), searchNearby, key from the environment variable
PLACES_API_KEY. The WHATSAT JSON is Google's answer with "places" cut to the bound. If the
request fails (cannot connect, timeout, HTTP error, not JSON) the answer still comes back
at once, with
    {"error": {"code": <HTTP status, or 503>, "message": ..., "status": ...}, "places": []}
(Google's own error object when it sent one, else status "UNAVAILABLE").
"""

import asyncio
import json
import logging
import os
import re
import sys
import time
from decimal import Context, Decimal

import aiohttp
import yaml

CONFIG_FILE = "config.yml"
PLACES_URL = "https://places.googleapis.com/v1/places:searchNearby"
FIELD_MASK = "places.displayName,places.formattedAddress,places.location,places.id"
PLACES_TIMEOUT = 3      # seconds
PEER_TIMEOUT = 3        # seconds for a neighbour to acknowledge a message
RETRY_INTERVAL = 0.2    # seconds between tries to reach a neighbour that is down
MAX_SENDS = 32          # messages in flight to one neighbour at a time
MAX_LINE = 1 << 20

LOCATION_RE = re.compile(r"([+-][0-9]+\.[0-9]+)([+-][0-9]+\.[0-9]+)")
TIME_RE = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
DIFF_RE = re.compile(r"[+-][0-9]+\.[0-9]{9}")
RADIUS_RE = re.compile(r"[0-9]+(\.[0-9]+)?")
BOUND_RE = re.compile(r"[0-9]+")


def load_config(path=CONFIG_FILE):
    with open(path) as f:
        config = yaml.safe_load(f)
    host = config.get("host", "127.0.0.1")
    ports = {name: int(s["port"]) for name, s in config["servers"].items()}
    neighbors = {name: list(s.get("neighbors") or []) for name, s in config["servers"].items()}
    return host, ports, neighbors


def parse_location(location):
    """Returns (lat, lng) as strings, or None if the location is not valid."""
    m = LOCATION_RE.fullmatch(location)
    if not m:
        return None
    lat, lng = m.group(1), m.group(2)
    if abs(Decimal(lat)) > 90 or abs(Decimal(lng)) > 180:
        return None
    return lat, lng


def valid_time(t):
    return TIME_RE.fullmatch(t) is not None


def time_diff(received_ns, client_time):
    """Receive time minus client time, '+1.234567890', computed exactly."""
    ctx = Context(prec=len(client_time) + 40)
    received = Decimal(received_ns).scaleb(-9, ctx)
    diff = ctx.subtract(received, Decimal(client_time))
    return "{:+.9f}".format(diff)


def newer(new_time, old_time):
    """Is client time new_time later than old_time?"""
    return float(new_time) > float(old_time)


def squeeze(text):
    """Every run of newlines becomes one newline; no trailing newlines."""
    return re.sub(r"\n\n+", "\n", text).rstrip("\n")


def error_json(code, message, status="UNAVAILABLE"):
    return {"error": {"code": code, "message": message, "status": status}, "places": []}


def trim_places(body, bound):
    """Google's answer (text) with its places cut to bound, as the JSON we send."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("Places answer is not a JSON object")
    if isinstance(data.get("places"), list):
        data["places"] = data["places"][:bound]
    return squeeze(json.dumps(data, indent=3))


class Record:
    """What we know about one client: its newest IAMAT, as the server that got it saw it."""

    def __init__(self, origin, diff, client, location, client_time):
        self.origin = origin
        self.diff = diff
        self.client = client
        self.location = location
        self.time = client_time

    def at_line(self):
        return f"AT {self.origin} {self.diff} {self.client} {self.location} {self.time}"


class Server:
    def __init__(self, name, host, ports, neighbors):
        self.name = name
        self.host = host
        self.ports = ports
        self.neighbors = neighbors[name]
        self.clients = {}                                    # client id -> Record
        self.up = {n: False for n in self.neighbors}         # reachable, as far as we know
        self.limits = {n: asyncio.Semaphore(MAX_SENDS) for n in self.neighbors}
        self.tasks = set()

    def spawn(self, coro):
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def start(self):
        # Everybody is "down" until they answer us: the first HELLO gets us their records.
        for n in self.neighbors:
            self.spawn(self.reconnect(n))

    # ---------- connections ----------

    async def handle_connection(self, reader, writer):
        peer = writer.get_extra_info("peername")
        logging.info("new connection from %s", peer)
        try:
            while True:
                try:
                    raw = await reader.readline()
                except ValueError:
                    logging.warning("line too long from %s, closing", peer)
                    break
                if not raw:
                    break
                received_ns = time.time_ns()
                line = raw
                if line.endswith(b"\n"):
                    line = line[:-1]
                    if line.endswith(b"\r"):
                        line = line[:-1]
                # Client ids can be any bytes: latin-1 maps each byte to one character
                # and back, so everything is copied byte for byte.
                text = line.decode("latin-1")
                logging.info("received from %s: %r", peer, text)
                reply = await self.handle_line(text, received_ns)
                if not reply:
                    continue  # blank line
                logging.info("sending to %s: %r", peer, reply)
                writer.write(reply.encode("latin-1"))
                await writer.drain()
        except (ConnectionError, OSError) as e:
            logging.info("connection from %s failed: %r", peer, e)
        finally:
            logging.info("closing connection from %s", peer)
            try:
                writer.close()
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def handle_line(self, text, received_ns):
        # Only ASCII white space separates fields: split the bytes, not the str.
        fields = [f.decode("latin-1") for f in text.encode("latin-1").split()]
        if not fields:
            return None  # blank line
        cmd = fields[0]
        if cmd == "IAMAT" and len(fields) == 4:
            reply = self.iamat(fields[1], fields[2], fields[3], received_ns)
        elif cmd == "WHATSAT" and len(fields) == 4:
            reply = await self.whatsat(fields[1], fields[2], fields[3])
        elif cmd == "AT" and len(fields) == 7:
            reply = self.peer_at(fields[1:])
        elif cmd == "HELLO" and len(fields) == 2:
            reply = self.peer_hello(fields[1])
        else:
            reply = None
        if reply is None:
            return f"? {text}\n"
        return reply

    # ---------- commands ----------

    def iamat(self, client, location, client_time, received_ns):
        if parse_location(location) is None or not valid_time(client_time):
            return None
        record = Record(self.name, time_diff(received_ns, client_time), client, location, client_time)
        self.update(record, came_from=None)
        return record.at_line() + "\n"

    def peer_at(self, fields):
        origin, diff, client, location, client_time, sender = fields
        if (origin not in self.ports or sender not in self.up or not DIFF_RE.fullmatch(diff)
                or parse_location(location) is None or not valid_time(client_time)):
            return None
        self.update(Record(origin, diff, client, location, client_time), came_from=sender)
        return "ACK\n"

    def peer_hello(self, sender):
        if sender not in self.up:
            return None
        logging.info("%s asks for everything we know (%d clients)", sender, len(self.clients))
        for record in list(self.clients.values()):
            self.send_record(sender, record)
        return "ACK\n"

    def update(self, record, came_from):
        old = self.clients.get(record.client)
        if old is not None and not newer(record.time, old.time):
            logging.info("not newer than what we have for %s, ignored", record.client)
            return
        self.clients[record.client] = record
        for n in self.neighbors:
            if n != came_from:
                self.send_record(n, record)

    async def whatsat(self, client, radius, bound):
        record = self.clients.get(client)
        if record is None or not RADIUS_RE.fullmatch(radius) or not BOUND_RE.fullmatch(bound):
            return None
        radius_km = Decimal(radius)
        bound = int(bound)
        if not (0 < radius_km <= 50) or not (1 <= bound <= 20):
            return None
        lat, lng = parse_location(record.location)
        places = await self.query_places(float(lat), float(lng), float(radius_km * 1000), bound)
        return f"{record.at_line()}\n{places}\n\n"

    async def query_places(self, lat, lng, radius_m, bound):
        headers = {
            "Content-Type": "application/json",
            "X-Goog-Api-Key": os.environ.get("PLACES_API_KEY", ""),
            "X-Goog-FieldMask": FIELD_MASK,
        }
        body = {
            "maxResultCount": bound,
            "locationRestriction": {
                "circle": {"center": {"latitude": lat, "longitude": lng}, "radius": radius_m},
            },
        }
        logging.info("Places query: %s", json.dumps(body))
        try:
            timeout = aiohttp.ClientTimeout(total=PLACES_TIMEOUT)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(PLACES_URL, json=body, headers=headers) as resp:
                    text = await resp.text()
                    status = resp.status
            if status == 200:
                return trim_places(text, bound)
            answer = error_json(status, f"Places answered HTTP {status}", "UNKNOWN")
            try:
                google_error = json.loads(text).get("error")
                if isinstance(google_error, dict):
                    answer["error"] = google_error
            except (ValueError, AttributeError):
                pass
            logging.warning("Places error: HTTP %d", status)
            return squeeze(json.dumps(answer, indent=3))
        except asyncio.TimeoutError:
            message = "Places request timed out"
        except aiohttp.ClientError as e:
            # (not str(e): never risk putting the key in an answer)
            message = f"Places request failed ({type(e).__name__})"
        except ValueError as e:
            message = f"bad answer from Places: {e}"
        logging.warning("Places error: %s", message)
        return squeeze(json.dumps(error_json(503, message), indent=3))

    # ---------- talking to neighbours ----------

    def send_record(self, neighbor, record):
        if not self.up[neighbor]:
            # It will get this record (or a newer one) when it is back: see reconnect().
            return
        self.spawn(self.send_or_mark_down(neighbor, f"{record.at_line()} {self.name}\n"))

    async def send_or_mark_down(self, neighbor, message):
        if not await self.send(neighbor, message):
            self.mark_down(neighbor)

    def mark_down(self, neighbor):
        if self.up[neighbor]:
            logging.info("lost %s: will retry every %.1f s and resync", neighbor, RETRY_INTERVAL)
            self.up[neighbor] = False
            self.spawn(self.reconnect(neighbor))

    async def reconnect(self, neighbor):
        while not await self.send(neighbor, f"HELLO {self.name}\n"):
            await asyncio.sleep(RETRY_INTERVAL)
        self.up[neighbor] = True
        logging.info("%s is up: sending it all %d clients", neighbor, len(self.clients))
        for record in list(self.clients.values()):
            self.send_record(neighbor, record)

    async def send(self, neighbor, message):
        """Sends one line on a new connection; True once the neighbour acknowledged it."""
        async with self.limits[neighbor]:
            port = self.ports[neighbor]
            writer = None
            try:
                async with asyncio.timeout(PEER_TIMEOUT):
                    reader, writer = await asyncio.open_connection(self.host, port)
                    logging.info("connected to %s", neighbor)
                    logging.info("sending to %s: %r", neighbor, message)
                    writer.write(message.encode("latin-1"))
                    await writer.drain()
                    ack = await reader.readline()
                if ack != b"ACK\n":
                    logging.info("%s did not acknowledge (%r)", neighbor, ack)
                    return False
                return True
            except (OSError, asyncio.TimeoutError) as e:
                logging.info("sending to %s failed: %r", neighbor, e)
                return False
            finally:
                if writer is not None:
                    writer.close()
                    try:
                        async with asyncio.timeout(PEER_TIMEOUT):
                            await writer.wait_closed()
                    except (OSError, asyncio.TimeoutError):
                        pass
                    logging.info("closed connection to %s", neighbor)


async def main():
    host, ports, neighbors = load_config()
    if len(sys.argv) != 2 or sys.argv[1] not in ports:
        print(f"usage: {sys.argv[0]} {{{'|'.join(ports)}}}", file=sys.stderr)
        sys.exit(1)
    name = sys.argv[1]
    logging.basicConfig(filename=f"{name}.log", level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    server = Server(name, host, ports, neighbors)
    listener = await asyncio.start_server(server.handle_connection, host, ports[name], limit=MAX_LINE)
    logging.info("%s listening on %s:%d", name, host, ports[name])
    server.start()
    async with listener:
        await listener.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
