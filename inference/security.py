"""API keys and per-client rate limits of the gateway, checked before a /v1 request's body is read.

Keys are compared as SHA-256 digests with `hmac.compare_digest`, against every configured key without an early
exit: the time taken says neither how close a guess was, nor which key matched, nor how long the keys are.
Clients are named by a key id (the first 8 hex digits of the key's SHA-256), which metrics and logs may show; the
key itself is never stored here, logged or exported. Everything runs on the event loop: no locks, no awaits, O(1)
per request (plus one digest compare per configured key).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi.responses import Response
from starlette.types import Scope

from llmwatch.errors import ConfigError
from llmwatch.settings import GatewaySettings

from .gateway_metrics import GatewayMetrics
from .protocol import ErrorResponse

log = logging.getLogger(__name__)

#: clients whose buckets are kept (least recently seen evicted first), so random keys or addresses cannot grow memory
MAX_CLIENTS = 50_000
#: label and bucket name of a client that is not known by a key (wrong key, or no keys configured)
UNKNOWN = "-"
_BEARER = b"bearer "


def key_id(key: str | bytes) -> str:
    """The short, non-reversible name of an API key (what metrics and logs show)."""
    raw = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(raw).hexdigest()[:8]


class _Bucket:
    """A token bucket: `tokens` available at time `stamp`."""

    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class Guard:
    """Authenticates and rate-limits /v1 requests; `check` answers None (go on) or the 401/429 to send."""

    def __init__(
        self,
        settings: GatewaySettings,
        metrics: GatewayMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        secrets = [k.get_secret_value().strip().encode() for k in settings.api_keys]
        blank = [str(i) for i, s in enumerate(secrets) if not s]
        if blank:  # refused rather than skipped: a list of blank keys must not quietly leave the gateway open
            raise ConfigError(f"LLMWATCH_GATEWAY__API_KEYS: key #{', #'.join(blank)} is blank")
        self._digests = [(hashlib.sha256(s).digest(), key_id(s)) for s in secrets]
        self._rate = settings.rate_limit_rps
        self._burst = float(settings.rate_limit_burst)
        self._metrics = metrics
        self._clock = clock
        self._max_clients = max(max_clients, 1)
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        if self._digests:
            log.info("gateway: /v1 requires an API key (%d configured, ids %s)", len(self._digests), self.key_ids)
        if self._rate > 0:
            per = "API key" if self._digests else "client address"
            log.info("gateway: rate limit %.6g requests/s per %s, burst %d", self._rate, per, int(self._burst))

    @classmethod
    def from_settings(cls, settings: GatewaySettings, metrics: GatewayMetrics) -> Guard | None:
        """A guard when keys or a rate limit are configured; None leaves the request path untouched."""
        if not settings.api_keys and settings.rate_limit_rps <= 0:
            return None
        return cls(settings, metrics)

    @property
    def key_ids(self) -> list[str]:
        return [kid for _, kid in self._digests]

    def check(self, scope: Scope) -> Response | None:
        """None when the request may go on; else the OpenAI-shaped 401 or 429 to answer with."""
        client = UNKNOWN
        if self._digests:
            found = self._authenticate(scope)
            if isinstance(found, Response):
                return found
            client = found
        if self._rate > 0:
            bucket = client
            if not self._digests:
                address = scope.get("client")
                bucket = address[0] if address else UNKNOWN
            wait_s = self._take(bucket)
            if wait_s > 0:
                return self._too_many(client, wait_s)
        return None

    # --- keys ----------------------------------------------------------------------------------

    def _authenticate(self, scope: Scope) -> str | Response:
        """The id of the configured key the request carries, or the 401 that says what is wrong."""
        presented: bytes | None = None
        scheme_ok = True
        for name, value in scope["headers"]:
            if name == b"authorization":
                if value[:7].lower() == _BEARER:
                    presented = value[7:].strip()
                else:
                    scheme_ok = False
                break
            if name == b"x-api-key" and presented is None:
                presented = value.strip()
        if not presented:
            if not scheme_ok:
                return self._unauthorized(
                    "The Authorization header must use the Bearer scheme: 'Authorization: Bearer YOUR_KEY'.",
                    "invalid_api_key",
                )
            return self._unauthorized(
                "You didn't provide an API key: send 'Authorization: Bearer YOUR_KEY' (or an 'x-api-key' header).",
                "missing_api_key",
            )
        digest = hashlib.sha256(presented).digest()
        matched: str | None = None
        for known, kid in self._digests:  # every key is compared, the match does not stop the loop
            if hmac.compare_digest(digest, known):
                matched = kid
        if matched is None:
            return self._unauthorized("Incorrect API key provided.", "invalid_api_key")
        return matched

    def _unauthorized(self, message: str, code: str) -> Response:
        self._metrics.denied("unauthorized", UNKNOWN)
        error = ErrorResponse.of(401, message, code=code)
        return Response(
            error.model_dump_json(),
            status_code=401,
            media_type="application/json",
            headers={"www-authenticate": "Bearer"},
        )

    # --- rate --------------------------------------------------------------------------------

    def _take(self, name: str) -> float:
        """0 when a token was taken for `name`; else the seconds until one will be there."""
        now = self._clock()
        buckets = self._buckets
        bucket = buckets.get(name)
        if bucket is None:
            if len(buckets) >= self._max_clients:
                buckets.popitem(last=False)
            buckets[name] = _Bucket(self._burst - 1.0, now)
            return 0.0
        buckets.move_to_end(name)
        tokens = min(self._burst, bucket.tokens + (now - bucket.stamp) * self._rate)
        bucket.stamp = now
        if tokens >= 1.0:
            bucket.tokens = tokens - 1.0
            return 0.0
        bucket.tokens = tokens
        return (1.0 - tokens) / self._rate

    def _too_many(self, client: str, wait_s: float) -> Response:
        self._metrics.denied("rate_limited", client)
        retry_after = max(1, math.ceil(wait_s))
        who = f"API key {client}" if client != UNKNOWN else "this client"
        error = ErrorResponse.of(
            429,
            f"Rate limit reached for {who}: {self._rate:.6g} requests/s, burst {int(self._burst)}; "
            f"retry after {retry_after} s.",
            type="rate_limit_error",
            code="rate_limit_exceeded",
        )
        return Response(
            error.model_dump_json(),
            status_code=429,
            media_type="application/json",
            headers={"retry-after": str(retry_after)},
        )
