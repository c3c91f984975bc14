"""The HTTP voice service (FastAPI). Import ``create_app`` from ``demod_voice.server.app``."""
