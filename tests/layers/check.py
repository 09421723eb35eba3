#!/usr/bin/env python3
"""check.py - the include rules of the layers, checked by `make check`.

Every quoted #include of every .c/.h file under controller/ and
reconcilers/ is resolved as the compiler does (the including file's folder,
then -Icontroller, then -Ireconcilers) and the layer of the header found must
be one the including layer may see:

  layer         folder                   may include
  core          controller/*.{c,h}       core, store
  store         controller/store/        store, core
  engine        controller/engine/       engine, store, core, reconcilers/reconciler.h
  reconcilers   reconcilers/             reconcilers, core
  cli           controller/cli/          cli, core, store
  server        controller/server/       everything but cli, except cli/cli.h
                                         (cmd_serve.c implements serve's row
                                         of the command table)

So nothing outside server/ includes a server/ header, the CLI reaches the
daemon only through HTTP (and the store, offline), and a reconciler sees
only reconciler.h, render.h and the core. Prints each violation as
FILE:LINE: and exits 1 when there is one, 2 on a header it cannot find.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')

ALLOWED = {
    "core": {"core", "store"},
    "store": {"store", "core"},
    "engine": {"engine", "store", "core", "reconcilers/reconciler.h"},
    "reconcilers": {"reconcilers", "core"},
    "cli": {"cli", "core", "store"},
    "server": {"core", "store", "engine", "reconcilers", "server",
               "controller/cli/cli.h"},
}


def layer(rel):
    parts = rel.split("/")
    if parts[0] == "reconcilers":
        return "reconcilers"
    if len(parts) == 2:
        return "core"
    return parts[1]


def resolve(src, name):
    for d in (os.path.dirname(src), "controller", "reconcilers"):
        p = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(os.path.join(ROOT, p)):
            return p
    return None


def main():
    bad = 0
    for top in ("controller", "reconcilers"):
        for dirpath, _, names in os.walk(os.path.join(ROOT, top)):
            for n in sorted(names):
                if not n.endswith((".c", ".h")):
                    continue
                src = os.path.relpath(os.path.join(dirpath, n), ROOT)
                mine = layer(src)
                with open(os.path.join(ROOT, src), encoding="utf-8") as f:
                    for lineno, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        hdr = resolve(src, m.group(1))
                        if hdr is None:
                            print(f"{src}:{lineno}: cannot find \"{m.group(1)}\"")
                            return 2
                        theirs = layer(hdr)
                        ok = ALLOWED[mine]
                        if theirs in ok or hdr in ok:
                            continue
                        print(f"{src}:{lineno}: the {mine} layer includes "
                              f"{hdr} ({theirs})")
                        bad += 1
    if bad:
        print(f"layers: {bad} include(s) break the rules in tests/layers/check.py",
              file=sys.stderr)
        return 1
    print("layers: every include follows the rules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
