"""``serve --ray``: the same FastAPI app as a Ray Serve ingress, one deployment per engine, one shared cache.

* ``settings.py``: the ``ray_serve`` config section -> Serve deployment options, validated;
* ``engine.py``: the engine deployment (one per configured and installed engine) that runs the registry's
  engine and streams its sentences;
* ``cache.py``: the cache deployment (one replica) that owns the audio cache and the de-duplication claims,
  and the ingress-side object the ``Service`` uses in place of its own ``AudioCache``;
* ``remote.py``: the ingress-side provider that prepares a request like the local one (validation, cache
  identity) and runs it on the engine's deployment, retrying once when the replica died;
* ``app.py``: the ingress deployment (``server.app.create_app`` with a ``RayService``) and the application;
* ``run.py``: start or join Ray, run the application, stop it on Ctrl-C/SIGTERM.

Nothing here imports Ray at module import time except ``app``, ``engine``, ``cache`` and ``run``, which only
``serve --ray`` imports.
"""
