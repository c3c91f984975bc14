"""Streaming encoders on their own, and every format without a system ffmpeg."""

from __future__ import annotations

import io

import numpy as np
import pytest

from demod_voice import audio, streaming
from demod_voice.audio import Audio

av = pytest.importorskip("av")


def tone(freq: float, seconds: float, sr: int = 22050) -> Audio:
    t = np.arange(int(seconds * sr)) / sr
    return Audio(0.4 * np.sin(2 * np.pi * freq * t), sr)


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_chunks_in_one_file_out(fmt):
    chunks = [tone(220, 1.0), tone(330, 0.7), tone(440, 1.3, 44100)]  # the last at another rate: resampled
    encoder = streaming.StreamEncoder(fmt)
    pieces = [encoder.write(c) for c in chunks]
    pieces.append(encoder.finish())
    assert encoder.finish() == b""  # finishing twice is harmless
    data = b"".join(pieces)
    if fmt == "pcm":
        seconds = len(data) / 2 / 22050
    else:
        decoded = audio.read(data, what=fmt)
        seconds = decoded.duration
        assert decoded.peak > 0.2
    frame = streaming.frame_seconds(fmt, 22050)
    assert 3.0 - 1e-3 <= seconds <= 3.0 + 2 * frame + 1105 / 22050, (fmt, seconds)
    if fmt in streaming.CODECS:
        assert pieces[0] and pieces[1]  # bytes leave with every chunk, not only at the end


def test_nothing_written_still_gives_a_valid_empty_file():
    data = streaming.StreamEncoder("wav", 16000).finish()
    assert data[:4] == b"RIFF" and len(data) == 44
    with pytest.raises(Exception, match="cannot be streamed"):
        streaming.StreamEncoder("ogg")


def test_every_format_without_a_system_ffmpeg(cli, joe_voice, tmp_path):
    """PATH without ffmpeg: the CLI still writes aac, and the files read back (PyAV, libsndfile)."""
    env = {"PATH": str(tmp_path / "no-bin")}
    for fmt in ("aac", "mp3", "opus", "flac"):
        out = tmp_path / f"x.{fmt}"
        proc = cli("piper-infer", joe_voice, "No ffmpeg needed.", "-o", out, env=env)
        assert proc.returncode == 0, proc.stderr.decode()
        assert audio.read(out).duration > 0.5
    m4a = io.BytesIO()
    with av.open(m4a, mode="w", format="ipod") as container:  # an AAC in MP4 upload, as phones record
        stream = container.add_stream("aac", rate=22050, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone(300, 1.0).samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = 22050
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    decoded = audio.read(m4a.getvalue(), what="upload")
    assert decoded.sample_rate == 22050 and abs(decoded.duration - 1.0) < 0.1
