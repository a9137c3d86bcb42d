"""Helpers the compat scripts share: assertions that say what failed, per-partition comparison,
polling for a condition, and the command-line entry (bootstrap address in, exit status out)."""

import sys
import time
import traceback


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def compare(topic, got, want):
    """got/want: partition -> [(offset, key, value, headers)]; every record, in order."""
    for p in sorted(set(got) | set(want)):
        g, w = got.get(p, []), want.get(p, [])
        check(len(g) == len(w), f'{topic}[{p}]: got {len(g)} records, expected {len(w)}')
        for gr, wr in zip(g, w):
            check(gr == wr, f'{topic}[{p}]: got {gr}, expected {wr}')


def wait_for(what, cond, timeout=15):
    """Polls cond() every 0.2 s until it returns something true, and returns that."""
    deadline = time.time() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f'timed out waiting for {what}')
        time.sleep(0.2)


def run_main(main):
    """`python3 script.py HOST:PORT`: runs main(bootstrap); any failure exits non-zero."""
    if len(sys.argv) != 2:
        sys.exit(f'usage: {sys.argv[0]} HOST:PORT')
    try:
        main(sys.argv[1])
    except Exception as exc:  # any failure: say what, exit non-zero
        traceback.print_exc()
        sys.exit(f'FAILED: {type(exc).__name__}: {exc}')
