"""Batch synthesis: many jobs from a CSV or JSONL file, resumable, on local processes or Ray.

The pieces, left to right:

* ``jobs``     -- read the job file, validate every job (with line numbers) before anything runs;
* engines -- each engine's batch section (``demod_voice.synthesis.registry``) turns a job into audio;
* ``worker``   -- holds loaded engines and runs one job at a time (inside a local process or a Ray actor);
* ``local`` / ``ray_runner`` -- where the workers live;
* ``state``    -- the resume record (job hash per output) kept in a SQLite file beside the job file;
* ``runner``   -- the driver: skip what is done, dispatch by group, write outputs atomically, progress,
  Ctrl-C, ``--fail-fast`` and the report.
"""

from __future__ import annotations
