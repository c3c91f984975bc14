"""Piper: the ONNX engine (``engine``), its tinygrad backend, its plugin and its CLI commands."""
