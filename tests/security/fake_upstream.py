"""A hostile upstream on loopback: a real HTTP server whose first path segment picks how it misbehaves.

``/drip/...`` sends a 200 with a long Content-Length, then one byte a second; ``/hang/...`` accepts and never
answers; ``/huge/...`` announces 2 GB and streams generated zeros (never stored); ``/huge-chunked/...`` the same
without a length; ``/bomb/...`` a small FLAC holding half an hour of silence; ``/garbage/...`` random bytes as
audio/wav; ``/error/...`` a 500 whose body names internal details; ``/ok/...`` a short real WAV. ``/sized/N``
announces N bytes but sends ``BODY_BYTES`` (a mirror lying about a file's size). Every loop is bounded by
count and time, and ends when the client goes away.
"""

from __future__ import annotations

import io
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import soundfile as sf

SECRET = "internal-detail-10.9.8.7-do-not-show"
TWO_GB = 2 * 1024 ** 3
MAX_SECONDS = 120  # no misbehaviour outlives this
BODY_BYTES = 300_000


def bomb_flac(seconds: int = 1800, rate: int = 8000) -> bytes:
    """Silence FLAC-encoded: ~1800 s in a few hundred KB (written block by block, never whole in memory)."""
    out = io.BytesIO()
    block = np.zeros(rate * 10, dtype=np.int16)
    with sf.SoundFile(out, "w", samplerate=rate, channels=1, format="FLAC", subtype="PCM_16") as fh:
        for _ in range(seconds // 10):
            fh.write(block)
    return out.getvalue()


def short_wav(seconds: float = 0.5, rate: int = 22050) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    out = io.BytesIO()
    sf.write(out, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


class Upstream:
    def __init__(self):
        self.bomb = bomb_flac()
        self.wav = short_wav()
        self.hits: dict[str, int] = {}
        self.open = 0
        self.stop = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):  # noqa: N802
                self._answer(head=True)

            def do_GET(self):  # noqa: N802
                self._answer()

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(min(length, 1 << 20))
                self._answer()

            def _answer(self, head: bool = False):
                mode = self.path.strip("/").split("/")[0]
                upstream.hits[mode] = upstream.hits.get(mode, 0) + 1
                upstream.open += 1
                try:
                    getattr(self, "_" + mode.replace("-", "_"), self._missing)(head)
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
                    pass
                finally:
                    upstream.open -= 1
                    self.close_connection = True

            def _start(self, length: int | None, kind: str = "audio/wav", status: int = 200):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                if length is not None:
                    self.send_header("Content-Length", str(length))
                self.end_headers()

            def _missing(self, head):
                self._start(0, status=404)

            def _ok(self, head):
                self._start(len(upstream.wav))
                if not head:
                    self.wfile.write(upstream.wav)

            def _drip(self, head):
                self._start(100_000)
                ends = time.monotonic() + MAX_SECONDS
                while not upstream.stop.is_set() and time.monotonic() < ends:
                    self.wfile.write(b"R")
                    self.wfile.flush()
                    upstream.stop.wait(1.0)

            def _hang(self, head):
                upstream.stop.wait(MAX_SECONDS)

            def _stream_zeros(self, total: int):
                piece = bytes(1 << 16)
                sent, ends = 0, time.monotonic() + MAX_SECONDS
                while sent < total and not upstream.stop.is_set() and time.monotonic() < ends:
                    self.wfile.write(piece)
                    sent += len(piece)

            def _huge(self, head):
                self._start(TWO_GB)
                if not head:
                    self._stream_zeros(TWO_GB)

            def _huge_chunked(self, head):
                self.send_response(200)
                self.send_header("Content-Type", "audio/wav")
                self.send_header("Connection", "close")
                self.end_headers()  # no length: the body ends when the connection closes
                self._stream_zeros(TWO_GB)

            def _bomb(self, head):
                self._start(len(upstream.bomb), "audio/flac")
                if not head:
                    self.wfile.write(upstream.bomb)

            def _garbage(self, head):
                data = os.urandom(50_000)
                self._start(len(data))
                if not head:
                    self.wfile.write(data)

            def _error(self, head):
                data = ('{"error": {"message": "boom at ' + SECRET + '"}}').encode()
                self._start(len(data), "application/json", status=500)
                self.wfile.write(data)

            def _sized(self, head):
                announced = int(self.path.strip("/").split("/")[1])
                self._start(announced, "application/octet-stream")
                if not head:
                    self._stream_zeros(BODY_BYTES)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
