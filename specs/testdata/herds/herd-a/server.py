#!/usr/bin/env python3
"""CS 131 project: a proxy herd with asyncio.

Usage: python3 server.py NAME   (NAME is one of Hill, Jaquez, Smith, Campbell, Singleton)

Clients send
    IAMAT <client> <location> <time>      ->  AT <server> <diff> <client> <location> <time>
    WHATSAT <client> <radius km> <bound>  ->  the AT line, then the Places Nearby Search JSON
Anything else gets "? <line>".

Servers flood location updates to their neighbours with a one-line message on a fresh
TCP connection:
    AT <origin> <diff> <client> <location> <time> <sender>
(seven fields, so a client's copy of an AT line is not mistaken for one).

The Google key is read from the environment variable PLACES_API_KEY. If the Places request
fails, the WHATSAT answer still comes back right away with
    {"html_attributions": [], "results": [], "status": "UNKNOWN_ERROR", "error_message": ...}

Known limitation: a flood message that cannot be delivered (the neighbour is down or
unreachable) is dropped, and a server that restarts starts out knowing nothing; it only
learns about clients that send an IAMAT after it is back (the spec does not require more).
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

# Server names and the ports assigned to us.
SERVER_PORTS = {
    "Hill": 11795,
    "Jaquez": 11796,
    "Smith": 11797,
    "Campbell": 11798,
    "Singleton": 11799,
}

# Who talks to whom (both directions).
NEIGHBORS = {
    "Hill": ["Jaquez", "Smith"],
    "Jaquez": ["Hill", "Singleton"],
    "Smith": ["Hill", "Singleton", "Campbell"],
    "Campbell": ["Singleton", "Smith"],
    "Singleton": ["Jaquez", "Smith", "Campbell"],
}

HOST = "127.0.0.1"
PEER_HOST = "localhost"
PLACES_URL = "https://maps.googleapis.com/maps/api/place/nearbysearch/json"
PLACES_TIMEOUT = 3      # seconds
CONNECT_TIMEOUT = 2     # seconds, for flooding to a neighbour
MAX_LINE = 1 << 20

# ISO 6709 as in the spec's examples: +34.068930-118.445127
LOCATION_RE = re.compile(r"([+-][0-9]+\.[0-9]+)([+-][0-9]+\.[0-9]+)")
TIME_RE = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
DIFF_RE = re.compile(r"[+-][0-9]+\.[0-9]{9}")
RADIUS_RE = re.compile(r"[0-9]+(\.[0-9]+)?")
BOUND_RE = re.compile(r"[0-9]+")


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
    """Receive time minus client time, '+1.234567890'. Exact: no floats."""
    ctx = Context(prec=len(client_time) + 40)
    received = Decimal(received_ns).scaleb(-9, ctx)
    diff = ctx.subtract(received, Decimal(client_time))
    return "{:+.9f}".format(diff)


def newer(new_time, old_time):
    """Is client time new_time strictly later than old_time? (Decimal compares exactly.)"""
    return Decimal(new_time) > Decimal(old_time)


def squeeze(text):
    """Every run of newlines becomes one newline; no trailing newlines."""
    return re.sub(r"\n\n+", "\n", text).rstrip("\n")


def error_json(message):
    return {"html_attributions": [], "results": [], "status": "UNKNOWN_ERROR",
            "error_message": message}


def trim_places(body, bound):
    """The Places answer (text) with its results cut to bound, as the JSON we send."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("Places answer is not a JSON object")
    if isinstance(data.get("results"), list):
        data["results"] = data["results"][:bound]
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
    def __init__(self, name):
        self.name = name
        self.port = SERVER_PORTS[name]
        self.neighbors = NEIGHBORS[name]
        self.clients = {}      # client id -> Record
        self.tasks = set()     # flooding tasks in flight

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
                    continue  # blank line, or a neighbour's update
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
        if (origin not in SERVER_PORTS or sender not in SERVER_PORTS or not DIFF_RE.fullmatch(diff)
                or parse_location(location) is None or not valid_time(client_time)):
            return None
        logging.info("update from %s: %s", sender, client)
        self.update(Record(origin, diff, client, location, client_time), came_from=sender)
        return ""  # nothing to send back

    def update(self, record, came_from):
        old = self.clients.get(record.client)
        if old is not None and not newer(record.time, old.time):
            logging.info("not newer than what we have for %s, ignored", record.client)
            return
        self.clients[record.client] = record
        self.flood(record, came_from)

    async def whatsat(self, client, radius, bound):
        record = self.clients.get(client)
        if record is None or not RADIUS_RE.fullmatch(radius) or not BOUND_RE.fullmatch(bound):
            return None
        radius_km = Decimal(radius)
        bound = int(bound)
        if not (0 < radius_km <= 50) or not (1 <= bound <= 20):
            return None
        lat, lng = parse_location(record.location)
        radius_m = format((radius_km * 1000).normalize(), "f")
        places = await self.query_places(lat, lng, radius_m, bound)
        return f"{record.at_line()}\n{places}\n\n"

    async def query_places(self, lat, lng, radius_m, bound):
        params = {
            "location": f"{lat.lstrip('+')},{lng.lstrip('+')}",
            "radius": radius_m,
            "key": os.environ.get("PLACES_API_KEY", ""),
        }
        logging.info("Places query: location %s radius %s", params["location"], radius_m)
        try:
            timeout = aiohttp.ClientTimeout(total=PLACES_TIMEOUT)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.get(PLACES_URL, params=params) as resp:
                    body = await resp.text()
                    if resp.status != 200:
                        raise ValueError(f"Places answered HTTP {resp.status}")
            return trim_places(body, bound)
        except asyncio.TimeoutError:
            message = "Places request timed out"
        except aiohttp.ClientError as e:
            # (not str(e): never risk putting the URL, with the key, in an answer)
            message = f"Places request failed ({type(e).__name__})"
        except ValueError as e:
            message = f"bad answer from Places: {e}"
        logging.warning("Places error: %s", message)
        return squeeze(json.dumps(error_json(message), indent=3))

    # ---------- flooding ----------

    def flood(self, record, came_from):
        message = f"{record.at_line()} {self.name}\n"
        for neighbor in self.neighbors:
            if neighbor != came_from:
                task = asyncio.create_task(self.send(neighbor, message))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def send(self, neighbor, message):
        port = SERVER_PORTS[neighbor]
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(PEER_HOST, port), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as e:
            logging.info("cannot connect to %s (port %d): %r; message dropped", neighbor, port, e)
            return
        logging.info("connected to %s", neighbor)
        try:
            logging.info("sending to %s: %r", neighbor, message)
            writer.write(message.encode("latin-1"))
            await asyncio.wait_for(writer.drain(), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as e:
            logging.info("sending to %s failed: %r", neighbor, e)
        finally:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), CONNECT_TIMEOUT)
            except (OSError, asyncio.TimeoutError):
                pass
            logging.info("closed connection to %s", neighbor)


async def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SERVER_PORTS:
        print(f"usage: {sys.argv[0]} {{{'|'.join(SERVER_PORTS)}}}", file=sys.stderr)
        sys.exit(1)
    name = sys.argv[1]
    logging.basicConfig(filename=f"{name}.log", level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    server = Server(name)
    listener = await asyncio.start_server(server.handle_connection, HOST, server.port, limit=MAX_LINE)
    logging.info("%s listening on %s:%d", name, HOST, server.port)
    async with listener:
        await listener.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
