"""Home Assistant's Wyoming protocol: TTS (cloned voices included) and Whisper STT over TCP or a unix socket.

``server`` listens and runs one ``handler.Connection`` per client; ``info``
builds the describe answer; ``speech`` is the one bridge to the service that
also answers HTTP, so Wyoming gets the same engines, router fallback, cache
and profiles. Started by ``demod-voice serve --wyoming URI`` (beside HTTP in
one process, or alone with ``--no-http``).
"""
