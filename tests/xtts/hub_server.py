"""A small real HTTP server on loopback that serves files the way the Hugging Face hub does.

``HEAD/GET /{repo}/resolve/{revision}/{path}`` with the hub's headers
(``X-Repo-Commit``, ``ETag``, ``Content-Length``) and HTTP Range support, so
``huggingface_hub.hf_hub_download`` talks to it unchanged through ``HF_ENDPOINT``.
A path in ``drop_once`` gets its connection cut half way through the first
GET, like a flaky network; a path in ``slow`` is sent in pieces over that many seconds.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HubServer:
    def __init__(self, repo: str, revision: str, files: dict[str, bytes]):
        self.repo, self.revision, self.files = repo, revision, dict(files)
        self.drop_once: set[str] = set()
        self.slow: dict[str, float] = {}
        """Path -> seconds over which its body is sent (in 40 pieces), like a slow link."""
        self.requests: list[tuple[str, str, str | None]] = []  # (method, file path, Range header)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _lookup(self):
                prefix = f"/{hub.repo}/resolve/{hub.revision}/"
                path = self.path.split("?")[0]
                if not path.startswith(prefix) or path[len(prefix):] not in hub.files:
                    return None, None
                name = path[len(prefix):]
                return name, hub.files[name]

            def _not_found(self):
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _headers(self, data: bytes, status: int, start: int = 0):
                self.send_response(status)
                self.send_header("X-Repo-Commit", hub.revision)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()

            def do_HEAD(self):
                name, data = self._lookup()
                hub.requests.append(("HEAD", name or self.path, None))
                if data is None:
                    return self._not_found()
                self._headers(data, 200)

            def do_GET(self):
                name, data = self._lookup()
                ranged = self.headers.get("Range")
                hub.requests.append(("GET", name or self.path, ranged))
                if data is None:
                    return self._not_found()
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", ranged or "")
                if match:
                    start = int(match.group(1))
                self._headers(data, 206 if match else 200, start)
                body = data[start:]
                if name in hub.drop_once:
                    hub.drop_once.discard(name)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if name in hub.slow:
                    step = max(1, len(body) // 40)
                    for offset in range(0, len(body), step):
                        self.wfile.write(body[offset: offset + step])
                        self.wfile.flush()
                        time.sleep(hub.slow[name] / 40)
                    return
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def gets(self, name: str) -> list[str | None]:
        """The Range headers of every GET of ``name``."""
        return [r for m, n, r in self.requests if m == "GET" and n == name]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
