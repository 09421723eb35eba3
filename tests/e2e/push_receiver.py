#!/usr/bin/env python3
"""push_receiver.py - a push endpoint for the tests: records every request
as one JSON line {path, headers, body, t} in LOG and answers by the path's
first component:
  /ok/...        200
  /fail/N/...    500 for the first N requests to that path, then 200
  /gone/...      410
  /bad/...       400
  /hang/...      never answers (holds the connection 120 s)
  /redirect/...  302 to /ok/redirected
  /big/...       200 with a 100 MB body
Usage: push_receiver.py PORTFILE LOG [HOST [PORT]]; writes the port it
listens on (by default one of the kernel's choosing) to PORTFILE once it
listens.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
SEEN = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body=b"{}", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace")
        with LOCK:
            SEEN[self.path] = SEEN.get(self.path, 0) + 1
            count = SEEN[self.path]
            with open(LOG, "a") as f:
                f.write(json.dumps({"path": self.path,
                                    "headers": dict(self.headers.items()),
                                    "body": body, "t": time.time()}) + "\n")
        parts = self.path.strip("/").split("/")
        kind = parts[0]
        if kind == "fail" and len(parts) > 1 and count <= int(parts[1]):
            self.reply(500, b'{"error":"try again"}')
        elif kind == "gone":
            self.reply(410, b'{"error":"gone"}')
        elif kind == "bad":
            self.reply(400, b'{"error":"bad"}')
        elif kind == "hang":
            time.sleep(120)
        elif kind == "redirect":
            self.reply(302, b"{}", [("Location", "/ok/redirected")])
        elif kind == "big":
            self.send_response(200)
            self.send_header("Content-Length", str(100 << 20))
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(1600):
                    self.wfile.write(chunk)
            except OSError:
                pass
        else:
            self.reply(200, b'{"ok":true}')


if __name__ == "__main__":
    portfile, LOG = sys.argv[1], sys.argv[2]
    host = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
    port = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.request_queue_size = 1024
    srv = ThreadingHTTPServer((host, port), Handler)
    srv.daemon_threads = True
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()
