#!/usr/bin/env python3
"""promcheck.py < METRICS: parse Prometheus text exposition with the
prometheus_client parser (a real one, not ours) and check what the format
requires beyond parsing: every series (name + label set) appears once, and
every sample belongs to a family that has a TYPE. Prints one line per family
("NAME TYPE SAMPLES") on success and exits 0; prints the problem and exits 1
otherwise."""
import collections
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read()
    seen = collections.Counter()
    fams = 0
    try:
        for fam in text_string_to_metric_families(text):
            fams += 1
            if fam.type == "unknown":
                print(f"family {fam.name} has no TYPE", file=sys.stderr)
                return 1
            for s in fam.samples:
                seen[(s.name, tuple(sorted(s.labels.items())))] += 1
            print(f"{fam.name} {fam.type} {len(fam.samples)}")
    except Exception as err:  # the parser's own complaint
        print(f"does not parse: {err}", file=sys.stderr)
        return 1
    dups = [k for k, n in seen.items() if n > 1]
    for name, labels in dups:
        print(f"duplicate series: {name}{dict(labels)}", file=sys.stderr)
    if not fams:
        print("no metric families", file=sys.stderr)
        return 1
    return 1 if dups else 0


sys.exit(main())
