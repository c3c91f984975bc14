"""Two Ray nodes on one machine: a head and a second node labelled with a custom resource; ``serve --ray
ADDRESS`` joins them and the Piper deployment, which asks for that resource, runs on the second node. A stop
removes only the application: the cluster stays up."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time

import httpx
import pytest

pytest.importorskip("ray.serve")

from tests.core.test_same_audio import JOE  # noqa: E402
from tests.ray_serve.helpers import RayServer, kill_scoped, scoped_processes, short_tmp  # noqa: E402
from tests.server.conftest import KEYS, auth_config  # noqa: E402

pytestmark = pytest.mark.slow

ALICE = {"Authorization": f"Bearer {KEYS['alice']}"}
RAY = os.path.join(os.path.dirname(sys.executable), "ray")


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def ray_start(env: dict, *args: str) -> None:
    # every agent port chosen here: two nodes on one machine (and other Ray users) must not share one
    grpc, listen, runtime_env, metrics = free_ports(4)
    out = subprocess.run([RAY, "start", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                          "--dashboard-agent-grpc-port", str(grpc), "--dashboard-agent-listen-port", str(listen),
                          "--runtime-env-agent-port", str(runtime_env), "--metrics-export-port", str(metrics),
                          "--disable-usage-stats", *args], env=env, capture_output=True, timeout=300)
    assert out.returncode == 0, out.stdout.decode()[-3000:] + out.stderr.decode()[-3000:]


def test_a_deployment_runs_on_the_node_with_its_resource(tmp_path, joe_voice):
    tmp = short_tmp()
    marker = str(tmp)
    # Token authentication, with the token given to every node and client as a cluster's operator would
    # (docs/scale-out.md): a second node does not read the head's generated token file by itself.
    env = {**os.environ, "RAY_TMPDIR": str(tmp), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    (port,) = free_ports(1)
    address = f"127.0.0.1:{port}"
    try:
        ray_start(env, "--head", "--port", str(port), "--temp-dir", str(tmp), "--include-dashboard", "false")
        ray_start(env, "--address", address, "--resources", json.dumps({"node2": 1}))
        nodes = json.loads(subprocess.run(
            [sys.executable, "-c", f"import json, ray; ray.init(address={address!r}, logging_level='ERROR'); "
             "print(json.dumps({n['NodeID']: n['Resources'] for n in ray.nodes() if n['Alive']}))"],
            env=env, capture_output=True, timeout=300, check=True).stdout.decode().strip().splitlines()[-1])
        node2 = [node for node, resources in nodes.items() if "node2" in resources]
        assert len(nodes) == 2 and len(node2) == 1

        config = (auth_config() + "  admin_users: [alice]\n"
                  f"paths:\n  data_dir: {tmp_path / 'data'}\n  cache_dir: {tmp_path / 'cache'}\n"
                  "ray_serve:\n  engines:\n    piper: {replicas: 1, num_cpus: 1, resources: {node2: 0.5}}\n")
        server = RayServer(tmp_path / "home", config, address=address, ray_tmp=tmp,
                           env_extra={k: env[k] for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")})
        try:
            server.wait_ready(ALICE, "engine-piper", 1)
            (replica,) = server.replicas(ALICE, "piper")
            assert replica["node_id"] == node2[0]
            res = httpx.post(server.url + "/api/tts", headers=ALICE, timeout=600,
                             json={"text": "Spoken on the second node.", "voice": JOE, "format": "wav"})
            assert res.status_code == 200 and res.headers["x-engine"] == "piper"
            assert server.stop() == 0
        finally:
            server.stop()
        time.sleep(2)
        # only the application went: the cluster's own processes are still there
        assert any("raylet" in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
                   for pid in scoped_processes(marker))
    finally:
        kill_scoped(marker)
