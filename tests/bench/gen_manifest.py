#!/usr/bin/env python3
"""gen_manifest.py N KIND[,KIND...] - print N manifest documents, split
evenly over the kinds given (the last kind takes the remainder), for the
bench scripts. Kinds: AiPrompt, AiModel, AiAgent (refers to prompt-i and
model-i, so list AiPrompt and AiModel with it), ToolPermission."""
import sys

SPECS = {
    "AiPrompt": lambda i: ("prompt", {"body": f'"prompt body number {i} with some text"'}),
    "AiModel": lambda i: ("model", {"identifier": f"provider/model-{i}"}),
    "AiAgent": lambda i: ("agent", {"description": f'"agent {i}"', "mode": "subagent",
                                     "prompt": f"prompt-{i}", "model": f"model-{i}",
                                     "temperature": 0.2}),
    "ToolPermission": lambda i: ("perm", {"tool": f"tool{i}", "pattern": '"*"', "action": "ask",
                                          "active": "true", "priority": i}),
}


def doc(kind, i):
    prefix, spec = SPECS[kind](i)
    lines = ["apiVersion: pocketcoder.dev/v1", f"kind: {kind}", "metadata:",
             f"  name: {prefix}-{i}", "spec:"]
    lines += [f"  {k}: {v}" for k, v in spec.items()]
    return "\n".join(lines)


def main():
    n, kinds = int(sys.argv[1]), sys.argv[2].split(",")
    each = n // len(kinds)
    out = []
    for j, kind in enumerate(kinds):
        count = each if j < len(kinds) - 1 else n - each * (len(kinds) - 1)
        out += [doc(kind, i) for i in range(count)]
    print("\n---\n".join(out))


main()
