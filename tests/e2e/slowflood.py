#!/usr/bin/env python3
"""slowflood.py - hold many slow or idle HTTP connections open against a
server while a prober measures how fast it still answers.

Used by tests/e2e/slowclients.bats and tests/bench/bench_slow.sh; standard
library only. The flood (one selector loop) keeps, for --seconds:
  --slow-headers N  connections sending a request's header lines one per
                    second, never ending them (slowloris)
  --slow-body N     POSTs with complete headers and Content-Length 100000
                    whose body comes at one byte per second
  --idle N          keep-alive connections that send one request, read the
                    reply, then say nothing
Each connection the server closes is opened again after --reopen-ms (20),
as an attacker would. The connections are spread over --sources loopback addresses
(127.0.0.2, 127.0.0.3, ...), or all come from --source ADDR.

The prober (a thread) opens a new connection from 127.0.0.1 every
--probe-every ms and times each of --probe paths (comma-separated) from
connect to the end of the reply. With --stream PATH it also holds one SSE
stream opened before the flood and counts the events it receives.

Prints one JSON object: per probe path n, ok, failed, p50/p99/max in ms;
the flood's opened, closed by the server, and statuses seen; the stream's
events before and during the flood.
"""
import argparse
import json
import selectors
import socket
import threading
import time

BODY_LEN = 100000


def parse_args():
    a = argparse.ArgumentParser()
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--host", default="127.0.0.1")
    a.add_argument("--slow-headers", type=int, default=0)
    a.add_argument("--slow-body", type=int, default=0)
    a.add_argument("--idle", type=int, default=0)
    a.add_argument("--sources", type=int, default=1)
    a.add_argument("--source", default=None)
    a.add_argument("--seconds", type=float, default=5.0)
    a.add_argument("--warmup", type=float, default=1.5)
    a.add_argument("--probe", default="/api/health,/healthz")
    a.add_argument("--probe-every", type=float, default=50.0)
    a.add_argument("--probe-timeout", type=float, default=5.0)
    a.add_argument("--stream", default=None)
    a.add_argument("--token", default=None)
    a.add_argument("--reopen-ms", type=float, default=20.0)
    return a.parse_args()


class Conn:
    def __init__(self, kind, src):
        self.kind, self.src = kind, src
        self.sock = None
        self.next_at = 0.0
        self.sent_head = False
        self.got = b""
        self.lines = 0


class Flood:
    def __init__(self, args):
        self.args = args
        self.sel = selectors.DefaultSelector()
        self.conns = []
        self.opened = 0
        self.closed_by_server = 0
        self.statuses = {}
        self.errors = {}
        kinds = (["headers"] * args.slow_headers + ["body"] * args.slow_body +
                 ["idle"] * args.idle)
        for i, k in enumerate(kinds):
            src = args.source or "127.0.0.%d" % (2 + i % max(1, args.sources))
            self.conns.append(Conn(k, src))

    def open(self, c, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((c.src, 0))
            s.setblocking(False)
            s.connect_ex((self.args.host, self.args.port))
        except OSError as e:
            self.errors[e.strerror] = self.errors.get(e.strerror, 0) + 1
            s.close()
            c.next_at = now + 0.1
            return
        c.sock, c.sent_head, c.got, c.lines = s, False, b"", 0
        c.next_at = now
        self.opened += 1
        self.sel.register(s, selectors.EVENT_READ, c)

    def drop(self, c, now, by_server):
        if c.sock is None:
            return
        if by_server:
            self.closed_by_server += 1
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        c.sock = None
        c.next_at = now + self.args.reopen_ms / 1000.0   # open again

    def send(self, c, data, now):
        try:
            c.sock.send(data)
        except BlockingIOError:
            pass                  # still connecting: try again soon
        except OSError:
            self.drop(c, now, True)
            return False
        return True

    def tick(self, c, now):
        a = self.args
        head = "Host: %s\r\nUser-Agent: slowflood\r\n" % a.host
        if c.kind == "headers":
            if not c.sent_head:
                if self.send(c, ("GET /api/health HTTP/1.1\r\n" + head).encode(), now):
                    c.sent_head = True
            elif self.send(c, b"X-Slow-%d: x\r\n" % c.lines, now):
                c.lines += 1
            c.next_at = now + 1.0
        elif c.kind == "body":
            if not c.sent_head:
                if self.send(c, ("POST /api/collections/healthchecks/records HTTP/1.1\r\n"
                                 + head + "Content-Type: application/json\r\n"
                                 "Content-Length: %d\r\n\r\n" % BODY_LEN).encode(), now):
                    c.sent_head = True
            elif self.send(c, b" ", now):
                c.lines += 1
            c.next_at = now + 1.0
        elif c.kind == "idle":
            if not c.sent_head:
                if self.send(c, ("GET /api/health HTTP/1.1\r\n" + head + "\r\n").encode(), now):
                    c.sent_head = True
                    c.next_at = now + 3600   # then nothing, ever
                else:
                    c.next_at = now + 0.01

    def readable(self, c, now):
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.drop(c, now, True)
            return
        if not data:
            self.drop(c, now, True)
            return
        c.got += data
        if c.got.startswith(b"HTTP/1.") and b"\r\n" in c.got and not c.lines:
            code = c.got.split(b" ", 2)[1].decode(errors="replace")
            self.statuses[code] = self.statuses.get(code, 0) + 1
            c.lines = 1       # count one status per connection
        if len(c.got) > 65536:
            c.got = c.got[-1024:]

    def run(self, until):
        while True:
            now = time.monotonic()
            if now >= until:
                break
            wait = 0.05
            for c in self.conns:
                if c.sock is None:
                    if now >= c.next_at:
                        self.open(c, now)
                elif now >= c.next_at:
                    self.tick(c, now)
                if c.sock is not None:
                    wait = min(wait, max(0.0, c.next_at - now))
            for key, _ in self.sel.select(timeout=wait):
                self.readable(key.data, time.monotonic())

    def open_now(self):
        return sum(1 for c in self.conns if c.sock is not None)


def probe_once(a, path):
    t0 = time.monotonic()
    s = socket.create_connection((a.host, a.port), timeout=a.probe_timeout)
    try:
        s.settimeout(max(0.01, a.probe_timeout - (time.monotonic() - t0)))
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % (path, a.host)).encode())
        got = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    finally:
        s.close()
    ms = (time.monotonic() - t0) * 1000.0
    ok = got.startswith(b"HTTP/1.1 200") or got.startswith(b"HTTP/1.0 200")
    return ok, ms


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))], 2)


class Stream(threading.Thread):
    """One SSE stream, opened before the flood; counts "id:" lines."""

    def __init__(self, a):
        super().__init__(daemon=True)
        self.a, self.events, self.error = a, [], None
        self.sock = socket.create_connection((a.host, a.port), timeout=10)
        auth = "Authorization: %s\r\n" % a.token if a.token else ""
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n%s\r\n"
                           % (a.stream, a.host, auth)).encode())

    def run(self):
        buf = b""
        try:
            self.sock.settimeout(None)
            while True:
                d = self.sock.recv(65536)
                if not d:
                    self.error = "closed"
                    return
                buf += d
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.startswith(b"id:"):
                        self.events.append(time.monotonic())
        except OSError as e:
            self.error = str(e)


def main():
    a = parse_args()
    stream = None
    if a.stream:
        stream = Stream(a)
        stream.start()
    flood = Flood(a)
    start = time.monotonic()
    probe_from = start + a.warmup
    end = probe_from + a.seconds
    paths = [p for p in a.probe.split(",") if p]
    results = {p: {"ms": [], "failed": 0, "errors": {}} for p in paths}

    def prober():
        while time.monotonic() < probe_from:
            time.sleep(0.01)
        while time.monotonic() < end:
            for p in paths:
                r = results[p]
                try:
                    ok, ms = probe_once(a, p)
                    if ok:
                        r["ms"].append(ms)
                    else:
                        r["failed"] += 1
                except OSError as e:
                    r["failed"] += 1
                    k = type(e).__name__
                    r["errors"][k] = r["errors"].get(k, 0) + 1
            time.sleep(a.probe_every / 1000.0)

    pt = threading.Thread(target=prober, daemon=True)
    pt.start()
    flood.run(probe_from)
    open_at_probe = flood.open_now()
    flood.run(end)
    pt.join(a.probe_timeout + 1)
    out = {"probes": {}, "flood": {
        "wanted": len(flood.conns), "open_when_probing": open_at_probe,
        "open_at_end": flood.open_now(), "opened": flood.opened,
        "closed_by_server": flood.closed_by_server,
        "statuses": flood.statuses, "errors": flood.errors}}
    for p, r in results.items():
        out["probes"][p] = {"n": len(r["ms"]) + r["failed"], "ok": len(r["ms"]),
                            "failed": r["failed"], "errors": r["errors"],
                            "p50_ms": pct(r["ms"], 50), "p99_ms": pct(r["ms"], 99),
                            "max_ms": pct(r["ms"], 100)}
    if stream:
        out["stream"] = {"events_before_flood": sum(1 for t in stream.events if t < probe_from),
                         "events_during_flood": sum(1 for t in stream.events if probe_from <= t < end),
                         "error": stream.error}
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
