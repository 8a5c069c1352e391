"""One TLS context per process for the short-lived HTTP clients of the harness and the query endpoint.

httpx builds a fresh context for every client (loading certifi's CA bundle: ~33 ms of CPU on this machine), and
`httpx.get` makes a client per call. The harness polls local endpoints several times a second while a benchmark
runs, and on two cores those contexts took CPU from the worker being measured (about half a core during
`bench pipeline`'s drain, 2026-12-07). Same settings as httpx's own default, built once.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def default_tls_context() -> ssl.SSLContext:
    """httpx's default context (certifi's CA bundle, verification on), shared by every client that passes it."""
    return httpx.create_ssl_context()
