#!/usr/bin/env python3
"""pty_prompt.py ANSWER... -- COMMAND...: run COMMAND on a new pseudo-terminal
and answer each prompt ending in ": " with the next ANSWER, the way a person
types (only once the prompt is shown). Prints everything the terminal showed
and exits with COMMAND's status; 3 when a prompt does not come within 30 s."""
import os
import pty
import select
import sys


def main():
    sep = sys.argv.index("--")
    answers, cmd = sys.argv[1:sep], sys.argv[sep + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    seen = b""
    pending = b""
    while True:
        r, _, _ = select.select([fd], [], [], 30)
        if not r:
            sys.stdout.write(seen.decode(errors="replace"))
            os.kill(pid, 9)
            sys.exit(3)
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        pending += chunk
        if answers and pending.rstrip(b" ").endswith(b":"):
            pending = b""
            os.write(fd, answers.pop(0).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(seen.decode(errors="replace"))
    sys.exit(os.waitstatus_to_exitcode(status))


main()
