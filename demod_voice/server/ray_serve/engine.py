"""One Serve deployment per engine: the registry's engine, run in its replica, one sentence at a time.

The ingress prepared the request already (voice resolved, options validated, cache key made) with the same
provider; the replica prepares it again with its own provider -- cheap, and the replica then holds the
engine, its model cache and its device -- and streams the chunks back as they are synthesised. Engines that
keep per-voice state (``settings.MULTIPLEXED``) are multiplexed by voice, so a voice's requests go to the
replica that already holds its latents or conversion model.

An engine whose backend is a server process of its own (GPT-SoVITS's api_v2 with a managed install) gives
a ``replica_server(cfg)``: the replica starts one on its node, speaks to it through the config it returns,
and stops it in ``__del__``, which Serve calls when the replica is scaled down, redeployed or shut down.
"""

from __future__ import annotations

import logging
import os

from ray import serve

_LOGGER = logging.getLogger(__name__)


@serve.deployment
class EngineDeployment:
    """Runs one engine of the registry (``name``) for the ingress."""

    def __init__(self, cfg, name: str):
        from demod_voice.synthesis import registry

        engine = registry.get(name, cfg)
        own = getattr(engine, "replica_server", None)
        self.server = own(cfg) if own is not None else None
        try:
            self.cfg = self.server.cfg if self.server is not None else cfg
            self.name = name
            self.provider = engine.Provider(self.cfg, name)
        except BaseException:
            self.__del__()
            raise

    def __del__(self):
        """Stop the replica's own server process, if it has one (at most once)."""
        server, self.server = getattr(self, "server", None), None
        if server is not None:
            server.stop()

    def check_health(self) -> None:
        """Serve's periodic probe: a replica whose own server process died is unhealthy, so Serve replaces it
        (and the new replica starts a fresh server)."""
        if self.server is not None and not self.server.running():
            raise RuntimeError(f"{self.name}: this replica's server process (pid {self.server.pid}) is gone")

    @serve.multiplexed(max_num_models_per_replica=16)
    async def _voice(self, voice_id: str) -> str:
        # the engine's own caches hold the voice's state (latents, models); this records which replica has it
        return voice_id

    async def speak(self, request, voice):
        """The chunks (``Audio``, one per sentence) of ``request`` spoken in ``voice``."""
        import asyncio

        voice_id = serve.get_multiplexed_model_id()
        if voice_id:
            await self._voice(voice_id)
        candidate = self.provider.prepare(request, voice)
        chunks = await asyncio.to_thread(lambda: iter(candidate.start()))
        done = object()
        try:
            while (chunk := await asyncio.to_thread(next, chunks, done)) is not done:
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                await asyncio.to_thread(close)

    def status(self) -> dict:
        """The provider's own status in this replica, plus where the replica runs."""
        import ray

        return {**self.provider.status(), "pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}

    def pid(self) -> int:
        return os.getpid()

    def server_pid(self) -> int | None:
        """The process id of the replica's own server process (None without one)."""
        return self.server.pid if self.server is not None else None

    def preload(self, voice: str) -> None:
        preload = getattr(self.provider, "preload", None)
        if preload is not None:
            preload(voice)
