"""A loopback stand-in for GPT-SoVITS's ``api_v2.py``: its requests and answers as documented, nothing more.

It implements the contract the gpt-sovits engine relies on -- ``POST``/``GET /tts`` with text, text_lang,
ref_audio_path, prompt_text, prompt_lang, top_k, top_p, temperature, speed_factor, media_type and
streaming_mode; ``GET /set_gpt_weights`` and ``GET /set_sovits_weights`` with ``weights_path``; errors as HTTP
400 ``{"message": ..., "Exception": ...}`` -- and answers with a sine tone (32 kHz, the v2 models' rate), one
WAV or, with streaming_mode, a WAV header followed by raw 16-bit PCM pieces. It is NOT a stand-in for
GPT-SoVITS's synthesis quality. Run as the real one is: ``python api_v2.py -a HOST -p PORT -c CONFIG``; every
request is appended as a JSON line to ``$FAKE_API_V2_LOG`` so tests can check what was sent.
Standard library only, so it starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RATE = 32000
LANGUAGES = {"zh", "en", "ja", "ko", "yue", "all_zh", "all_ja", "all_yue", "all_ko", "auto", "auto_yue"}
STATE = {"gpt": "", "sovits": ""}


def wav_header(rate: int, data_bytes: int = 0) -> bytes:
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", data_bytes))


def tone(seconds: float, freq: float = 220.0) -> bytes:
    n = int(seconds * RATE)
    return b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / RATE))) for i in range(n))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _log(self, route: str, params: dict) -> None:
        path = os.environ.get("FAKE_API_V2_LOG")
        if path:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"route": route, "params": params}) + "\n")

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        url = urllib.parse.urlparse(self.path)
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        if url.path == "/tts":
            return self.tts(params)
        if url.path in ("/set_gpt_weights", "/set_sovits_weights"):
            self._log(url.path, params)
            path = params.get("weights_path")
            if not path:
                return self._json(400, {"message": "gpt weight path is required" if "gpt" in url.path
                                        else "sovits weight path is required"})
            if not os.path.isfile(path):
                return self._json(400, {"message": "change weight failed", "Exception": f"No such file: {path}"})
            STATE["gpt" if "gpt" in url.path else "sovits"] = path
            return self._json(200, {"message": "success"})
        self._json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        try:
            params = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._json(422, {"detail": "invalid JSON"})
        if urllib.parse.urlparse(self.path).path != "/tts":
            return self._json(404, {"detail": "Not Found"})
        self.tts(params)

    def tts(self, req: dict) -> None:
        self._log("/tts", {**req, "_weights": dict(STATE)})
        text, text_lang = req.get("text"), str(req.get("text_lang", "")).lower()
        media_type = req.get("media_type", "wav")
        streaming = req.get("streaming_mode", False) in (True, "true", "True", "1", 1)
        # check_params, as api_v2 documents it
        if not req.get("ref_audio_path"):
            return self._json(400, {"message": "ref_audio_path is required"})
        if not text:
            return self._json(400, {"message": "text is required"})
        if not text_lang:
            return self._json(400, {"message": "text_lang is required"})
        if text_lang not in LANGUAGES:
            return self._json(400, {"message": f"text_lang: {text_lang} is not supported in version v2"})
        if str(req.get("prompt_lang", "")).lower() not in LANGUAGES:
            return self._json(400, {"message": f"prompt_lang: {req.get('prompt_lang')} is not supported in version v2"})
        if media_type not in ("wav", "raw", "ogg", "aac"):
            return self._json(400, {"message": f"media_type: {media_type} is not supported"})
        if not os.path.isfile(req["ref_audio_path"]):  # the real server fails loading it
            return self._json(400, {"message": "tts failed", "Exception": f"{req['ref_audio_path']} not exists"})
        seconds = min(0.3 + 0.05 * len(text), 6.0) / float(req.get("speed_factor", 1.0) or 1.0)
        pcm = tone(seconds)
        self.send_response(200)
        self.send_header("Content-Type", f"audio/{media_type}")
        if not streaming:
            body = (wav_header(RATE, len(pcm)) if media_type == "wav" else b"") + pcm
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pieces = [wav_header(RATE)] if media_type == "wav" else []
        step = RATE // 5 * 2  # 0.2 s pieces, as the model emits fragments
        pieces += [pcm[i:i + step] for i in range(0, len(pcm), step)]
        for piece in pieces:
            self.wfile.write(f"{len(piece):X}\r\n".encode() + piece + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="GPT-SoVITS api_v2 contract stand-in (tests only)")
    parser.add_argument("-a", "--bind_addr", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=9880)
    parser.add_argument("-c", "--tts_config", default="GPT_SoVITS/configs/tts_infer.yaml")
    args = parser.parse_args()
    if not os.path.isfile(args.tts_config):
        raise SystemExit(f"config not found: {args.tts_config}")
    ThreadingHTTPServer((args.bind_addr, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
