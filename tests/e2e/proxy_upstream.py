#!/usr/bin/env python3
"""proxy_upstream.py PORTFILE - the upstream that tests/e2e/proxy.bats puts
behind the observability proxy: a real HTTP/1.1 server on a free loopback
port (written to PORTFILE) with one behaviour per path:

  /echo...     JSON {method, path, query, headers, length, sha256} of the
               request as it arrived (Content-Length or chunked body)
  /big?n=N     N bytes of the pattern bytes(i % 251), chunked, no length
  /hop         hop-by-hop and cookie headers the proxy must drop
  /redirect    302 to /elsewhere (the proxy must pass it back)
  /hang        says nothing for 60 s
  /bad         a reply that is not HTTP
"""
import hashlib
import json
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATTERN = bytes(i % 251 for i in range(251 * 1024))


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def read_body(self):
        h = hashlib.sha256()
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    b = self.rfile.read(min(left, 1 << 16))
                    h.update(b)
                    n += len(b)
                    left -= len(b)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0") or 0)
            while left:
                b = self.rfile.read(min(left, 1 << 16))
                if not b:
                    break
                h.update(b)
                n += len(b)
                left -= len(b)
        return n, h.hexdigest()

    def handle_any(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/hang":
            time.sleep(60)
            return
        if u.path == "/bad":
            self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
            self.close_connection = True
            return
        n, sha = self.read_body()
        if u.path == "/big":
            total = int(urllib.parse.parse_qs(u.query)["n"][0])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            sent = 0
            while sent < total:
                b = PATTERN[: min(len(PATTERN), total - sent)]
                self.wfile.write(b"%x\r\n" % len(b) + b + b"\r\n")
                sent += len(b)
            self.wfile.write(b"0\r\n\r\n")
            return
        if u.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({
            "method": self.command, "path": u.path, "query": u.query,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "length": n, "sha256": sha}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if u.path == "/hop":
            self.send_header("Connection", "X-Secret-Hop")
            self.send_header("X-Secret-Hop", "must not pass")
            self.send_header("Keep-Alive", "timeout=5")
            self.send_header("Set-Cookie", "sid=upstream")
            self.send_header("X-Kept", "yes")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


if __name__ == "__main__":
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    srv.serve_forever()
