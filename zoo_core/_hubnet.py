"""Fail fast when the Hub endpoint cannot be reached.

Without ``HF_HUB_OFFLINE``, every ``hf_hub_download`` of a file that is not cached retries a
refused or timed-out connection 5 times with exponential backoff (huggingface_hub's
``http_backoff``: sleeps of 1, 2, 4, 8 and 8 s), so a load on a machine without network waits
~24 s per file before failing. zoo opens one TCP connection to the endpoint first, once per
process and endpoint; when that fails, downloads run with ``local_files_only=True``: cached
files are still used, and a missing one fails at once with the store's message.

A server that sends a file too slowly (one byte every few seconds never trips the client's
per-read timeout) is cut off: once ``ZOO_HUB_GRACE_S`` seconds (default 30) have passed, a
download whose average rate falls below ``ZOO_HUB_MIN_RATE`` bytes/s (default 1024) fails
with ``HubTooSlow``. zoo installs this check as huggingface_hub's client factory unless the
caller set one of their own.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 3.0
_verdicts: dict[str, str | None] = {}


def endpoint() -> str:
    from huggingface_hub import constants

    return os.environ.get("HF_ENDPOINT") or constants.ENDPOINT


def unreachable(url: str | None = None) -> str | None:
    """Why ``url`` (default: the Hub endpoint) cannot be reached, or ``None`` if it can.

    Behind a proxy (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``) the client's own handling
    is trusted and no probe is made.
    """
    url = url or endpoint()
    if url in _verdicts:
        return _verdicts[url]
    parts = urlparse(url)
    proxied = any(os.environ.get(v) or os.environ.get(v.lower())
                  for v in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"))
    verdict = None
    if not proxied and parts.hostname:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname, port), timeout=PROBE_TIMEOUT_S).close()
        except OSError as e:
            verdict = f"{url} is unreachable ({type(e).__name__}: {e})"
    _verdicts[url] = verdict
    return verdict


class HubTooSlow(OSError):
    """A download fell below the minimum rate; not retried by huggingface_hub."""


def _floor() -> tuple[float, float]:
    try:
        return (float(os.environ.get("ZOO_HUB_GRACE_S", "30")),
                float(os.environ.get("ZOO_HUB_MIN_RATE", "1024")))
    except ValueError:
        return 30.0, 1024.0


def _client() -> Any:
    """huggingface_hub's default client, its responses cut off below the minimum rate."""
    import httpx2
    from huggingface_hub.utils import _http

    class _Floor(httpx2.SyncByteStream):
        def __init__(self, inner: Any, url: str) -> None:
            self.inner, self.url = inner, url

        def __iter__(self) -> Iterator[bytes]:
            grace, rate = _floor()
            start, got = time.monotonic(), 0
            for chunk in self.inner:
                got += len(chunk)
                spent = time.monotonic() - start
                if spent > grace and got < rate * spent:
                    raise HubTooSlow(f"{self.url} sent {got} bytes in {spent:.0f} s, below "
                                     f"ZOO_HUB_MIN_RATE={rate:g} bytes/s; try again later or "
                                     "another mirror (HF_ENDPOINT)")
                yield chunk

        def close(self) -> None:
            self.inner.close()

    class _Transport(httpx2.HTTPTransport):
        def handle_request(self, request: Any) -> Any:
            response = super().handle_request(request)
            response.stream = _Floor(response.stream, str(request.url))
            return response

    client = _http.default_client_factory()
    return httpx2.Client(transport=_Transport(), event_hooks=client.event_hooks,
                         follow_redirects=True, timeout=None)


def _install_floor() -> None:
    from huggingface_hub.utils import _http

    if getattr(_http, "_GLOBAL_CLIENT_FACTORY", None) is _http.default_client_factory:
        _http.set_client_factory(_client)


def hf_hub_download(repo_id: str, filename: str, **kwargs: Any) -> str:
    """``huggingface_hub.hf_hub_download`` that does not retry an unreachable endpoint and
    cuts off a server that trickles."""
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    _install_floor()
    why = None if constants.HF_HUB_OFFLINE else unreachable()
    if why is None:
        return str(huggingface_hub.hf_hub_download(repo_id, filename, **kwargs))
    try:
        return str(huggingface_hub.hf_hub_download(repo_id, filename, local_files_only=True,
                                                   **kwargs))
    except LocalEntryNotFoundError:
        raise FileNotFoundError(
            f"the Hub endpoint {why}, and {filename!r} of {repo_id!r} is not in the Hub cache "
            f"({Path(constants.HF_HUB_CACHE)}); set HF_HUB_OFFLINE=1 to skip the Hub, or "
            "HF_ENDPOINT to a reachable mirror") from None
