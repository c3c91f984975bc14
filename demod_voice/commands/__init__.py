"""One module per command: ``register(subparsers, common)`` plus its handler.

Handlers stay thin: parse-level checks, then one call into the library.
"""
