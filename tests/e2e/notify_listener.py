#!/usr/bin/env python3
"""notify_listener.py SOCKET LOG: stand in for systemd's notify socket.

Binds an AF_UNIX SOCK_DGRAM socket at SOCKET (as systemd does for
NOTIFY_SOCKET) and appends every datagram it receives to LOG, one line per
datagram with its newline-separated assignments joined by '|'
("READY=1|STATUS=serving on ..."). Runs until killed.
"""
import os
import socket
import sys

path, log = sys.argv[1], sys.argv[2]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(log, "a", buffering=1) as out:
    while True:
        data = s.recv(65536)
        out.write(data.decode("utf-8", "replace").strip().replace("\n", "|") + "\n")
