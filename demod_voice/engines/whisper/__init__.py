"""Whisper (faster-whisper) speech-to-text: the model (``engine``)."""
