from tests.helpers import run_cli


def test_version(cli):
    proc = cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.decode().startswith("demod-voice ")


def test_speech_fixture(speech_wav):
    import soundfile as sf

    info = sf.info(str(speech_wav))
    assert info.samplerate == 22050 and info.duration > 3


def test_run_cli_importable():
    assert callable(run_cli)
