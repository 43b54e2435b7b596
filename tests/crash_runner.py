"""`python -m tests.crash_runner ARGS` runs the digest CLI exactly as the console script does,
with the send engine's crash seam armed from DIGEST_TEST_CRASH_AT=<point>:<n>: the n-th time the
worker reaches <point> (planned, claimed, submitted, recorded) the process SIGKILLs itself.
DIGEST_TEST_INTERRUPT_AT=<point>:<n> sends it a SIGINT there instead: a person's Ctrl-C, at a
known moment.

Only tests read that variable; production code has the seam as a no-op (digest.runtime).
"""

from __future__ import annotations

import os
import signal

from digest.cli import main
from digest.send import runtime


def arm(spec: str, signum: int = signal.SIGKILL) -> None:
    point, _, count = spec.partition(":")
    target = int(count or 1)
    seen = [0]

    def checkpoint(name: str) -> None:
        if name == point:
            seen[0] += 1
            if seen[0] == target:
                os.kill(os.getpid(), signum)

    runtime.checkpoint = checkpoint


if __name__ == "__main__":
    spec = os.environ.get("DIGEST_TEST_CRASH_AT")
    if spec:
        arm(spec)
    interrupt = os.environ.get("DIGEST_TEST_INTERRUPT_AT")
    if interrupt:
        arm(interrupt, signal.SIGINT)
    main()
