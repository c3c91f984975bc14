"""The API against its own OpenAPI schema (#35 item 7/8): schemathesis 4 generates requests from the schema of
a real server and checks every answer (no 5xx, only documented status codes and content types, ``Allow``
headers that name every method of a path, ...). Bounded: a few examples per operation and a time budget,
with short texts (``server.max_text_chars``) so that synthesis stays quick."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.security.conftest import KEYS, server_config
from tests.server.conftest import start_server, stop_server

#: Checks that need state the run cannot create (other users' resources, deletion) are left out.
EXCLUDED = "ignored_auth,positive_data_acceptance,use_after_free,ensure_resource_availability,object_level_authorization"


@pytest.mark.slow
def test_the_api_keeps_to_its_schema(tmp_path, joe_voice):
    pytest.importorskip("schemathesis")
    from tests.rvc.tiny import build_tiny_rvc

    # RVC's shared weights (tiny, random) are in place, so /api/convert runs its real checks instead of
    # answering 503 "weights missing" to every request.
    _, rvc = build_tiny_rvc(tmp_path / "rvc")
    extra = f"rvc:\n  hubert: '{rvc['rvc']['hubert']}'\n  rmvpe: '{rvc['rvc']['rmvpe']}'\n"
    config = server_config(extra).replace("  cpu_workers: 2\n",
                                          "  cpu_workers: 2\n  max_text_chars: 60\n  request_timeout_s: 10\n")
    proc, url = start_server(tmp_path, config, ("--preload",))
    try:
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", url + "/openapi.json",
             "-H", f"Authorization: Bearer {KEYS['alice']}", "--checks", "all", "--exclude-checks", EXCLUDED,
             "--phases", "examples,coverage,fuzzing", "--max-examples", "10", "--max-time", "50",
             "--generation-deterministic", "--request-timeout", "20", "-w", "1", "--no-color"],
            capture_output=True, text=True, timeout=240, cwd=tmp_path)  # its cache folder goes there
    finally:
        stop_server(proc)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout
