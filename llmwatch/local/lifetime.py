"""Child processes that do not outlive the process that started them."""

from __future__ import annotations

import signal
import sys


def die_with_parent() -> None:
    """Linux: this process gets SIGTERM when the thread that started it dies (even by SIGKILL), so a killed
    worker, test or bench leaves no child running. Call it first thing in the child (a `preexec_fn`, a pool
    initializer). Elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
