"""rvc add / list, voices list, and TTS -> RVC chaining in one process."""

from __future__ import annotations

import json

from tests.rvc.conftest import assert_converted


def test_add_list_and_convert_by_name(run_main, rvc_assets, short_speech, tmp_path, isolated_home, capsys):
    code, err = run_main("rvc", "add", "alice", rvc_assets["v2"], rvc_assets["index768"])
    assert code == 0, err
    folder = isolated_home / "data" / "demod-voice" / "rvc-voices" / "alice"
    assert (folder / "model.pth").is_file() and (folder / "model.index").is_file()
    meta = json.loads((folder / "voice.json").read_text())
    assert meta["version"] == "v2" and meta["f0"] is True and meta["sample_rate"] == 40000

    code, err = run_main("rvc", "add", "alice", rvc_assets["v1"])
    assert code == 2 and "already exists" in err
    code, err = run_main("rvc", "add", "../escape", rvc_assets["v1"])
    assert code == 2 and "invalid RVC voice name" in err
    code, err = run_main("rvc", "add", "bob", rvc_assets["v1"], rvc_assets["index768"])
    assert code == 2 and "256" in err
    assert not (folder.parent / "bob").exists()

    from demod_voice import cli

    capsys.readouterr()
    assert cli.main(["voices", "list", "--json", "--engine", "rvc"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(v["name"], v["engine"], v["sample_rate"]) for v in listed] == [("alice", "rvc", 40000)]

    out = tmp_path / "alice.wav"
    code, err = run_main("rvc-convert", short_speech, "--model", "alice", "--hubert", rvc_assets["hubert_dir"],
                         "--f0-method", "dio", "-o", out)
    assert code == 0, err
    assert_converted(out, short_speech, 40000, 400)


def test_piper_infer_chains_into_rvc(run_main, rvc_assets, joe_voice, tmp_path):
    """piper-infer ... --rvc: synthesise with the real Joe voice, then convert, in one process."""
    code, err = run_main("piper-infer", joe_voice, "Hi.", "-o", tmp_path / "x.wav", "--rvc-pitch", "3")
    assert code == 2 and "--rvc-pitch needs --rvc" in err
    code, err = run_main("rvc", "add", "carol", rvc_assets["v2_nof0"])
    assert code == 0, err
    out = tmp_path / "chained.wav"
    code, err = run_main("piper-infer", joe_voice, "Hello there, this is a test.", "-o", out, "--rvc", "carol",
                         "--hubert", rvc_assets["hubert_dir"])
    assert code == 0, err
    import numpy as np
    import soundfile as sf

    data, sr = sf.read(str(out), dtype="float32")
    assert sr == 32000  # the RVC voice's rate, not Piper's 22050
    assert np.isfinite(data).all() and len(data) > 0.5 * sr and np.abs(data).max() > 1e-3
