"""Voice training: from a dataset (``piper-preprocess``) or a profile's samples to a voice spoken by name.

``readiness`` says whether the data is enough for an engine; ``jobs`` runs one trainer in a subprocess with
progress records, checkpoints, resume and cancel, shared by the CLI (``train``) and the server
(``/api/training/jobs``); ``piper`` is the glue around piper-tts's ``piper.train``; ``store`` is where trained
voices live and how they are found by name. Nothing here imports torch at import time except ``piper``.
"""
