"""rvc-convert end to end on real speech with random-weight models in the genuine formats."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import soundfile as sf

from tests.rvc.conftest import assert_converted


@pytest.mark.parametrize("method", ["rmvpe", "harvest", "dio", "crepe-tiny"])
def test_every_f0_method_converts_through_the_cli(run_main, rvc_assets, short_speech, tmp_path, method):
    out = tmp_path / f"{method}.wav"
    code, err = run_main("rvc-convert", short_speech, "--model", rvc_assets["v2"], "--index", rvc_assets["index768"],
                         "--hubert", rvc_assets["hubert_dir"], "--rmvpe", rvc_assets["rmvpe"],
                         "--f0-method", method, "-o", out)
    assert code == 0, err
    assert "wrote" in err
    assert_converted(out, short_speech, 40000, 400)


@pytest.mark.slow
def test_full_crepe(run_main, rvc_assets, tiny_speech, tmp_path):
    out = tmp_path / "crepe.flac"
    code, err = run_main("rvc-convert", tiny_speech, "--model", rvc_assets["v2"], "--hubert", rvc_assets["hubert_dir"],
                         "--f0-method", "crepe", "-o", out)
    assert code == 0, err
    assert_converted(out, tiny_speech, 40000, 400)


def test_v1_with_fairseq_hubert_and_resample(run_main, rvc_assets, short_speech, tmp_path):
    """v1 (48k): HuBERT layer 9 + final_proj from a fairseq checkpoint; --resample-sr and --format."""
    out = tmp_path / "v1.out"
    code, err = run_main("rvc-convert", short_speech, "--model", rvc_assets["v1"], "--index", rvc_assets["index256"],
                         "--hubert", rvc_assets["hubert_pt"], "--f0-method", "harvest", "--pitch", "-5",
                         "--resample-sr", "22050", "--format", "wav", "--rms-mix-rate", "0.5", "--protect", "0.2",
                         "--filter-radius", "5", "-o", out)
    assert code == 0, err
    assert_converted(out, short_speech, 22050, 22050 // 100)


@pytest.mark.parametrize("key,rate,hop", [("v2_nof0", 32000, 320), ("v1_nof0", 40000, 400)])
def test_models_without_f0(run_main, rvc_assets, short_speech, tmp_path, key, rate, hop):
    out = tmp_path / "nof0.wav"
    hubert = rvc_assets["hubert_dir"] if key == "v2_nof0" else rvc_assets["hubert_pt"]
    # no --rmvpe: a no-f0 voice needs no pitch model at all
    code, err = run_main("rvc-convert", short_speech, "--model", rvc_assets[key], "--hubert", hubert, "-o", out)
    assert code == 0, err
    assert_converted(out, short_speech, rate, hop)


def test_folder_input_converts_every_file(rvc_assets, short_speech, tmp_path, cli):
    """A real subprocess: folder in, folder out, every audio file converted."""
    src = tmp_path / "in"
    src.mkdir()
    speech, sr = sf.read(str(short_speech), dtype="float32")
    sf.write(str(src / "a.wav"), speech, sr)
    sf.write(str(src / "b.flac"), speech[: sr], sr)
    (src / "notes.txt").write_text("not audio")
    out = tmp_path / "converted"
    proc = cli("rvc-convert", src, "--model", rvc_assets["v2"], "--hubert", rvc_assets["hubert_dir"],
               "--f0-method", "dio", "-o", out, "--format", "flac")
    assert proc.returncode == 0, proc.stderr.decode()
    err = proc.stderr.decode()
    assert "converted 2 of 2 files" in err
    assert "converting" not in err and "\r" not in err  # the progress bar is drawn on a terminal only
    assert sorted(p.name for p in out.iterdir()) == ["a.flac", "b.flac"]
    assert_converted(out / "a.flac", src / "a.wav", 40000, 400)
    assert_converted(out / "b.flac", src / "b.flac", 40000, 400)


def test_pitch_changes_the_f0_the_synthesizer_receives(isolated_home, rvc_assets, short_speech):
    from demod_voice import audio, config
    from demod_voice.engines import rvc

    cfg = config.load(flags={"rvc.hubert": str(rvc_assets["hubert_dir"]), "rvc.rmvpe": str(rvc_assets["rmvpe"])})
    engine = rvc.load(rvc_assets["v2"], cfg)
    speech = audio.read(short_speech)
    base = engine.pitch_track(speech, f0_method="harvest")
    up = engine.pitch_track(speech, f0_method="harvest", pitch=12)
    down = engine.pitch_track(speech, f0_method="harvest", pitch=-7)
    voiced = base > 0
    assert voiced.mean() > 0.2, "harvest found no voice in real speech"
    assert np.median(base[voiced]) > 70  # a real speaking pitch
    np.testing.assert_allclose(up[voiced] / base[voiced], 2.0, rtol=1e-4)
    np.testing.assert_allclose(down[voiced] / base[voiced], 2 ** (-7 / 12), rtol=1e-4)
    assert (up[~voiced] == 0).all()


def test_index_rate_zero_and_one_differ(isolated_home, rvc_assets, short_speech):
    from demod_voice import audio, config
    from demod_voice.engines import rvc

    cfg = config.load(flags={"rvc.hubert": str(rvc_assets["hubert_dir"])})
    engine = rvc.load(rvc_assets["v2"], cfg, index=rvc_assets["index768"])
    assert engine.has_index and engine.name == "rvc" and engine.sample_rate == 40000
    speech = audio.read(short_speech)
    off = engine.convert(speech, f0_method="dio", index_rate=0.0)
    full = engine.convert(speech, f0_method="dio", index_rate=1.0)
    assert len(off.samples) == len(full.samples)
    assert np.abs(off.samples - full.samples).max() > 1e-4


def test_engine_is_a_converter_and_is_cached(isolated_home, rvc_assets):
    from demod_voice import config
    from demod_voice.engines import rvc
    from demod_voice.engines.base import Converter

    cfg = config.load(flags={"rvc.hubert": str(rvc_assets["hubert_dir"])})
    engine = rvc.load(rvc_assets["v2_nof0"], cfg)
    assert isinstance(engine, Converter)
    assert rvc.load(str(rvc_assets["v2_nof0"]), cfg) is engine


def test_long_input_is_split_at_quiet_points(isolated_home, rvc_assets, short_speech):
    from demod_voice import audio, config
    from demod_voice.engines import rvc
    from demod_voice.engines.rvc import pipeline

    cfg = config.load(flags={"rvc.hubert": str(rvc_assets["hubert_dir"])})
    engine = rvc.load(rvc_assets["v2_nof0"], cfg)
    speech = audio.read(short_speech)
    x16 = audio.resample(speech, 16000).samples
    seg = pipeline.Segmenting(pad=0.2, center=0.7, query=0.3, max_len=1.0)
    cuts = pipeline.split_points(x16, seg)
    assert len(cuts) >= 2
    level = np.convolve(np.abs(x16), np.ones(160), mode="same")  # summed |x| over the 10 ms around each sample
    for k, cut in enumerate(cuts, start=1):  # as RVC: the quietest spot near each multiple of the centre, floored
        assert cut % 160 == 0
        lo, hi = int(k * 0.7 * 16000 - 0.3 * 16000), int(k * 0.7 * 16000 + 0.3 * 16000)
        assert lo - 160 < cut < hi
        assert level[cut:cut + 160].min() <= level[lo:hi].min() + 1e-6
    split = pipeline.Pipeline(engine.synth, engine.hubert, "v2", None, segmenting=seg)
    out = split.convert(speech, pipeline.ConvertOptions(rms_mix_rate=1.0))
    assert out.sample_rate == 32000
    assert abs(len(out.samples) - len(speech.samples) * 32000 / speech.sample_rate) <= 320
    assert np.isfinite(out.samples).all() and out.peak > 1e-3


def test_usage_errors(run_main, rvc_assets, short_speech, tmp_path):
    out = tmp_path / "never.wav"
    base = ["rvc-convert", short_speech, "--model", rvc_assets["v2"], "--hubert", rvc_assets["hubert_dir"], "-o", out]
    with pytest.raises(SystemExit) as exc:
        run_main(*base, "--pitch", "30")
    assert exc.value.code == 2
    code, err = run_main(*base, "--f0-method", "pm")
    if "parselmouth" not in sys.modules:
        import importlib.util

        if importlib.util.find_spec("parselmouth") is None:
            assert code == 2 and "praat-parselmouth" in err
    code, err = run_main("rvc-convert", tmp_path / "missing.wav", "--model", rvc_assets["v2"], "-o", out)
    assert code == 2 and "not found" in err
    code, err = run_main("rvc-convert", short_speech, "--model", "no-such-voice", "--hubert",
                         rvc_assets["hubert_dir"], "-o", out)
    assert code == 2 and "unknown RVC voice 'no-such-voice'" in err
    code, err = run_main(*base, "--index", rvc_assets["index256"])
    assert code == 2 and "768" in err and "256" in err
    blip = tmp_path / "blip.wav"
    sf.write(str(blip), np.zeros(100, np.float32), 22050)
    code, err = run_main("rvc-convert", blip, "--model", rvc_assets["v2"], "--hubert", rvc_assets["hubert_dir"],
                         "-o", out)
    assert code == 2 and "too short" in err
    assert not out.exists()


def test_missing_aux_weights_name_the_default_paths(run_main, rvc_assets, short_speech, tmp_path, isolated_home):
    out = tmp_path / "never.wav"
    code, err = run_main("rvc-convert", short_speech, "--model", rvc_assets["v2"], "-o", out)
    assert code == 2
    assert str(isolated_home / "data" / "demod-voice" / "models" / "rvc-aux" / "hubert_base.pt") in err
    assert "demod-voice models pull rvc-aux" in err
    code, err = run_main("rvc-convert", short_speech, "--model", rvc_assets["v2"], "--hubert",
                         rvc_assets["hubert_dir"], "--f0-method", "rmvpe", "-o", out)
    assert code == 2 and "rmvpe" in err and "models pull rvc-aux" in err
    assert not out.exists()


def test_default_aux_location_is_used(run_main, rvc_assets, short_speech, tmp_path, isolated_home):
    import shutil

    aux = isolated_home / "data" / "demod-voice" / "models" / "rvc-aux"
    aux.mkdir(parents=True)
    shutil.copyfile(rvc_assets["hubert_pt"], aux / "hubert_base.pt")
    shutil.copyfile(rvc_assets["rmvpe"], aux / "rmvpe.pt")
    out = tmp_path / "default.wav"
    code, err = run_main("rvc-convert", short_speech, "--model", rvc_assets["v2"], "-o", out)
    assert code == 0, err
    assert_converted(out, short_speech, 40000, 400)


@pytest.mark.gpu
def test_gpu_conversion_in_fp16(run_main, rvc_assets, short_speech, tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    out = tmp_path / "gpu.wav"
    code, err = run_main("rvc-convert", short_speech, "--model", rvc_assets["v2"], "--index", rvc_assets["index768"],
                         "--hubert", rvc_assets["hubert_dir"], "--rmvpe", rvc_assets["rmvpe"], "--gpu", "-o", out)
    assert code == 0, err
    assert_converted(out, short_speech, 40000, 400)


def test_quiet_hides_third_party_warnings(rvc_assets, short_speech, tmp_path, cli):
    """-q: pyworld's pkg_resources warning and torch's are not printed (issue 25 item 6); the file is written."""
    out = tmp_path / "quiet.wav"
    proc = cli("-q", "rvc-convert", short_speech, "--model", rvc_assets["v2"], "--hubert", rvc_assets["hubert_dir"],
               "--f0-method", "dio", "-o", out)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr.decode() == "" and out.stat().st_size > 1000
