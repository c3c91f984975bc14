"""The process-wide budget of received Wyoming audio, shared by every connection.

``stt.max_audio_s`` bounds one transcription, but at 96 kHz stereo that is
hundreds of MB per connection and Wyoming has no authentication, so all
connections together also draw on ``wyoming.max_audio_bytes``. Only the event
loop touches a budget, so it needs no lock.
"""

from __future__ import annotations


class AudioBudget:
    """Bytes of audio buffered by all connections together; ``take`` refuses what would pass the limit."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> bool:
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used = max(0, self.used - size)
