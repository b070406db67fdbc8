"""Fail fast when the Hub endpoint cannot be reached.

Without ``HF_HUB_OFFLINE``, every ``hf_hub_download`` of a file that is not cached retries a
refused or timed-out connection 5 times with exponential backoff (huggingface_hub's
``http_backoff``: sleeps of 1, 2, 4, 8 and 8 s), so a load on a machine without network waits
~24 s per file before failing. zoo opens one TCP connection to the endpoint first, once per
process and endpoint; when that fails, downloads run with ``local_files_only=True``: cached
files are still used, and a missing one fails at once with the store's message.
"""

from __future__ import annotations

import os
import socket
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


def hf_hub_download(repo_id: str, filename: str, **kwargs: Any) -> str:
    """``huggingface_hub.hf_hub_download`` that does not retry an unreachable endpoint."""
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

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
