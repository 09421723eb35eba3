#!/usr/bin/env python3
"""Manifests for the round-trip tests, generated from the schema.

roundtrip_gen.py SCHEMA USER_NAME prints one YAML-compatible JSON List with
a document for every kind that apply may create (writable, not an auth
collection, no required system field), in relation order, every field set
that a manifest may set (not system, hidden or password) to a value that is
not its zero, relations naming the record of their target made here (or
USER_NAME for users). The kinds left out are listed on stderr: their
records come from elsewhere (users and superusers through the API, sops by
sealing, reconcile status from the engine).
"""
import base64
import hashlib
import json
import struct
import sys

schema = json.load(open(sys.argv[1]))["collections"]
user = sys.argv[2]
by_name = {c["name"]: c for c in schema}


def creatable(c):
    return (c.get("apiWritable", True) and not c.get("auth") and
            not any(f.get("required") and f.get("system")
                    for f in c["fields"]))


def settable(f):
    return not (f.get("system") or f.get("hidden") or f["type"] == "password")


def ssh_blob():
    def string(b):
        return struct.pack(">I", len(b)) + b
    return string(b"ssh-ed25519") + string(bytes(range(32)))


# Fields whose values the server checks for a format of their own.
FORMATTED = {
    ("cron_jobs", "cron_expression"): "*/5 * * * *",
    ("cron_jobs", "timezone"): "Europe/Berlin",
    # a loopback address the push guard refuses: never contacted
    ("devices", "push_token"): "https://127.0.0.1:9/rt",
    ("ssh_keys", "public_key"):
        "ssh-ed25519 " + base64.b64encode(ssh_blob()).decode() + " rt@example",
    ("ssh_keys", "fingerprint"):
        "SHA256:" + base64.b64encode(
            hashlib.sha256(ssh_blob()).digest()).decode().rstrip("="),
}


def value(c, f):
    t = f["type"]
    if (c["name"], f["name"]) in FORMATTED:
        return FORMATTED[(c["name"], f["name"])]
    if t == "relation":
        target = f["collection"]
        return user if target == "users" else "rt-" + target
    if t == "select":
        return f["values"][-1]
    if t == "number":
        lo = f.get("min", 1) or 1
        return lo if f.get("max") is None else min(lo + 1, f["max"])
    if t == "bool":
        return True
    if t == "json":
        return {"RT_" + f["name"].upper(): "rt-" + c["name"]}
    if t == "date":
        return "2030-01-02 03:04:05.000Z"
    if t == "email":
        return "rt-%s@example.com" % c["name"]
    return "rt-%s-%s" % (c["name"], f["name"])


order, seen = [], set()


def visit(c):
    if c["name"] in seen:
        return
    seen.add(c["name"])
    for f in c["fields"]:
        if f["type"] == "relation" and settable(f):
            target = by_name[f["collection"]]
            if target is not c and creatable(target):
                visit(target)
    order.append(c)


for c in schema:
    if creatable(c):
        visit(c)
    else:
        print(c["kind"], file=sys.stderr)

items = []
for c in order:
    spec = {f["name"]: value(c, f) for f in c["fields"]
            if settable(f) and f["name"] != c.get("nameField")}
    items.append({"apiVersion": "pocketcoder.dev/v1", "kind": c["kind"],
                  "metadata": {"name": "rt-" + c["name"],
                               "labels": {"roundtrip": "yes"}},
                  "spec": spec})
json.dump({"kind": "List", "items": items}, sys.stdout, indent=1)
print()
