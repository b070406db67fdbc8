"""A Hub-compatible HTTP server on 127.0.0.1 for tests: the real huggingface_hub client talks
to it through ``HF_ENDPOINT``.

It serves what downloads, repo creation and uploads need: ``HEAD``/``GET``
``/{repo}/resolve/{revision}/{path}`` (with ``X-Repo-Commit``, ``ETag``, ``Content-Length``
and range requests), ``POST /api/repos/create``, ``GET /api/models/{repo}/revision/{rev}``,
``POST /api/models/{repo}/preupload/{rev}`` (every file ``regular``, no LFS) and
``POST /api/models/{repo}/commit/{rev}`` (NDJSON). Repos live in memory; each commit is an
immutable snapshot addressed by a 40-hex id, and ``main`` points at the latest.

Example:
    >>> with HubServer() as hub:
    ...     os.environ["HF_ENDPOINT"] = hub.url

From a shell, for trying a plugin's push and load by hand::

    $ python -m zoo_core.testing.hub_server [--port 8765]
    export HF_ENDPOINT=http://127.0.0.1:8765 HF_TOKEN=hf_loopback
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import signal
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlparse


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    private: bool = False

    def resolve(self, revision: str) -> str | None:
        if revision in self.refs:
            return self.refs[revision]
        matches = [c for c in self.commits if c.startswith(revision)] if len(revision) >= 7 else []
        return matches[0] if len(matches) == 1 else None


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class HubServer:
    """Start with ``with HubServer() as hub`` (or ``start()``/``stop()``); ``hub.url`` is the
    endpoint. ``hub.commit(repo, {path: data})`` seeds a repo; ``hub.requests`` logs calls."""

    def __init__(self, port: int = 0) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"hub": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def commit(self, repo_id: str, files: dict[str, bytes], message: str = "",
               deleted: tuple[str, ...] = ()) -> str:
        """Add a commit on ``main`` with ``files`` changed; return its id."""
        with self.lock:
            repo = self.repos.setdefault(repo_id, Repo())
            parent = repo.refs.get("main")
            tree = dict(repo.commits[parent]) if parent else {}
            tree.update(files)
            for path in deleted:
                tree.pop(path, None)
            digest = hashlib.sha1(f"{parent}{message}{len(repo.commits)}".encode())
            for path in sorted(files):
                digest.update(path.encode() + hashlib.sha256(files[path]).digest())
            oid = digest.hexdigest()
            repo.commits[oid] = tree
            repo.refs["main"] = oid
            return oid


_RESOLVE = re.compile(r"^/(?:(datasets|spaces)/)?(.+?)/resolve/([^/]+)/(.+)$")
_API = re.compile(r"^/api/(models|datasets|spaces)/(.+?)/(revision|preupload|commit|paths-info)"
                  r"(?:/(.+))?$")


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep tests quiet
        pass

    # -- helpers ----------------------------------------------------------------------------
    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, message: str, code: str) -> None:
        self._json(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _path(self) -> str:
        return unquote(urlparse(self.path).path)

    # -- verbs ------------------------------------------------------------------------------
    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch_get()

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch_get()

    def do_POST(self) -> None:  # noqa: N802
        path = self._path()
        self.hub.requests.append(("POST", path))
        body = self._body()
        if path == "/api/repos/create":
            return self._create(json.loads(body or b"{}"))
        if path == "/api/validate-yaml":
            return self._validate_card(json.loads(body or b"{}").get("content", ""))
        m = _API.match(path)
        if not m:
            return self._error(404, f"no route {path}", "EntryNotFound")
        _, repo_id, action, rev = m.groups()
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            return self._error(404, f"repository {repo_id} not found", "RepoNotFound")
        if action == "preupload":
            files = json.loads(body)["files"]
            return self._json(200, {"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                for f in files], "commitOid": repo.refs.get("main")})
        if action == "paths-info":
            return self._json(200, [])
        if action == "commit":
            return self._commit(repo_id, body)
        return self._error(405, f"{action} does not take POST", "MethodNotAllowed")

    def _create(self, payload: dict[str, Any]) -> None:
        name, org = payload.get("name", ""), payload.get("organization")
        repo_id = f"{org}/{name}" if org else name
        with self.hub.lock:
            exists = repo_id in self.hub.repos
            self.hub.repos.setdefault(
                repo_id, Repo(private=payload.get("visibility") == "private"))
        if exists:
            return self._json(409, {"error": "You already created this model repo",
                                    "url": f"{self.hub.url}/{repo_id}"})
        self.hub.commit(repo_id, {".gitattributes": b"*.safetensors filter=lfs\n"},
                        "initial commit")
        self._json(200, {"url": f"{self.hub.url}/{repo_id}", "name": repo_id})

    def _validate_card(self, content: str) -> None:
        """Model cards must open with a YAML front matter block holding a mapping."""
        parts = content.split("---", 2)
        errors = []
        if not content.startswith("---") or len(parts) < 3:
            errors.append({"message": "no YAML front matter between '---' lines"})
        else:
            try:
                import yaml

                if not isinstance(yaml.safe_load(parts[1]), dict):
                    errors.append({"message": "front matter is not a mapping"})
            except ImportError:
                pass
            except Exception as e:  # yaml.YAMLError
                errors.append({"message": f"invalid YAML: {e}"})
        self._json(400 if errors else 200, {"errors": errors, "warnings": []})

    def _commit(self, repo_id: str, body: bytes) -> None:
        files: dict[str, bytes] = {}
        deleted: list[str] = []
        message = ""
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                message = value.get("summary", "")
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                deleted.append(value["path"])
            else:
                return self._error(400, f"unsupported commit operation {key!r} (LFS is not "
                                   "served here)", "BadRequest")
        oid = self.hub.commit(repo_id, files, message, tuple(deleted))
        self._json(200, {"success": True, "commitOid": oid,
                         "commitUrl": f"{self.hub.url}/{repo_id}/commit/{oid}",
                         "commitMessage": message})

    def _dispatch_get(self) -> None:
        path = self._path()
        self.hub.requests.append((self.command, path))
        if path == "/api/whoami-v2":
            return self._json(200, {"type": "user", "name": "zoo-tester", "orgs": [],
                                    "auth": {"accessToken": {"role": "write"}}})
        m = _API.match(path)
        if m and m.group(3) == "revision":
            return self._repo_info(m.group(2), m.group(4) or "main")
        m = _RESOLVE.match(path)
        if m:
            return self._resolve(m.group(2), unquote(m.group(3)), m.group(4))
        self._error(404, f"no route {path}", "EntryNotFound")

    def _repo_info(self, repo_id: str, revision: str) -> None:
        repo = self.hub.repos.get(repo_id)
        oid = repo.resolve(revision) if repo else None
        if repo is None or oid is None:
            return self._error(404, f"{repo_id}@{revision} not found", "RevisionNotFound")
        self._json(200, {"id": repo_id, "modelId": repo_id, "sha": oid, "private": repo.private,
                         "siblings": [{"rfilename": p} for p in sorted(repo.commits[oid])]})

    def _resolve(self, repo_id: str, revision: str, filename: str) -> None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            return self._error(404, f"repository {repo_id} not found", "RepoNotFound")
        oid = repo.resolve(revision)
        if oid is None:
            return self._error(404, f"revision {revision} not found", "RevisionNotFound")
        tree = repo.commits[oid]
        if filename not in tree:
            return self._error(404, f"{filename} not found in {repo_id}@{oid}", "EntryNotFound")
        data = tree[filename]
        start, end = 0, len(data)
        status = 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start, end = int(a or 0), (int(b) + 1 if b else len(data))
            status = 206
        chunk = data[start:end]
        self.send_response(status)
        self.send_header("X-Repo-Commit", oid)
        self.send_header("ETag", f'"{_etag(data)}"')
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Content-Type", "application/octet-stream")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(chunk)


def main(argv: list[str] | None = None) -> int:
    """Serve an empty loopback Hub until interrupted; print the variables to export first."""
    p = argparse.ArgumentParser(prog="python -m zoo_core.testing.hub_server",
                                description="A Hub-compatible server on 127.0.0.1, in memory.")
    p.add_argument("--port", type=int, default=0, help="TCP port (default: 0, any free port)")
    port = p.parse_args(argv).port
    server = HubServer(port)
    print(f"export HF_ENDPOINT={server.url} HF_TOKEN=hf_loopback", flush=True)
    print("# repos live in memory until this process stops (Ctrl-C)", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
