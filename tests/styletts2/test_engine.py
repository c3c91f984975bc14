"""StyleTTS2 on random weights in the official LibriTTS layout: loading, phonemes, seeds, controls, safety."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest

TEXT = "Hello there, world. How are you?"


def speak(cfg, reference, **request):
    from demod_voice import synthesis
    from demod_voice.audio import concat
    from demod_voice.synthesis import Request

    options = request.pop("options", {})
    chunks = list(synthesis.synthesize("styletts2", Request(text=request.pop("text", TEXT), references=[reference],
                                                           options=options, **request), cfg, "cpu"))
    return chunks, concat(chunks).to_pcm16()


def test_checkpoint_is_in_the_official_layout_and_loads_through_the_same_code(tiny_styletts2):
    """The test .pth is what StyleTTS2's training saves; the loader folds its norms back into the weights."""
    import torch

    from demod_voice.engines.styletts2 import build, checkpoint
    from demod_voice.engines.styletts2.tiny import MODEL_PARAMS, PLBERT

    raw = torch.load(next(tiny_styletts2.glob("*.pth")), weights_only=True)["net"]
    assert set(checkpoint.INFERENCE_NETS) < set(raw) and "text_aligner" in raw
    decoder = raw["decoder"]
    assert "module.encode.conv1.weight_g" in decoder and "module.encode.conv1.weight_v" in decoder
    assert "module.shared.0.weight_orig" in raw["style_encoder"] and "module.shared.0.weight_u" in raw["style_encoder"]
    assert any(k.startswith("module.diffusion.net.blocks.0.") for k in raw["diffusion"])
    assert any(k.startswith("module.unet.blocks.0.") for k in raw["diffusion"])
    assert "module.embeddings.word_embeddings.weight" in raw["bert"]

    nets = checkpoint.load_nets(next(tiny_styletts2.glob("*.pth")))
    torch.manual_seed(0)  # the builder's weights, rebuilt: folding the stored norms gives them back
    fresh = build.networks(MODEL_PARAMS, PLBERT, width=24, asr_width=8)
    assert torch.allclose(nets["decoder"]["encode.conv1.weight"], fresh["decoder"].state_dict()["encode.conv1.weight"],
                          atol=1e-5)
    raw_weight = fresh["style_encoder"].state_dict()["shared.0.weight"]  # spectral norm: divided by its top σ
    top = torch.linalg.matrix_norm(raw_weight.reshape(raw_weight.shape[0], -1), ord=2)
    assert torch.allclose(nets["style_encoder"]["shared.0.weight"], raw_weight / top, atol=1e-5)


def test_phonemes_are_ipa_with_stress_and_punctuation_in_the_178_symbols():
    pytest.importorskip("piper")
    from demod_voice.engines.styletts2 import text

    assert text.N_SYMBOLS == 178 and text.SYMBOLS[0] == "$" and text.IDS["$"] == 0
    sentences = text.phonemize("Hello, world! Is it raining?")
    assert len(sentences) >= 1
    joined = " ".join(sentences)
    assert "ˈ" in joined and "," in joined and "?" in joined
    ids = text.to_ids(sentences[0])
    assert ids[0] == 0 and all(0 < i < 178 for i in ids[1:])
    assert text.to_ids("a ,") == [0, text.IDS["a"], text.IDS[" "], text.IDS[","]]
    assert all(len(p) <= 20 for p in text.pieces("ab " * 30, 20))


def test_seed_gives_identical_audio_and_every_control_changes_it(st2_cfg, speech_wav):
    chunks, first = speak(st2_cfg, speech_wav, seed=7)
    assert len(chunks) == 2 and all(c.sample_rate == 24000 and len(c.samples) > 0 for c in chunks)
    assert all(np.isfinite(c.samples).all() and c.peak > 0 for c in chunks)
    assert speak(st2_cfg, speech_wav, seed=7)[1] == first
    assert speak(st2_cfg, speech_wav, seed=8)[1] != first
    for option, value in {"alpha": 0.9, "beta": 0.1, "diffusion_steps": 3, "embedding_scale": 2.0}.items():
        assert speak(st2_cfg, speech_wav, seed=7, options={option: value})[1] != first, option
    assert len(speak(st2_cfg, speech_wav, seed=7, speed=2.0)[1]) < len(first)
    st2_cfg.set("styletts2.seed", 7, "test")  # the seed from the config
    assert speak(st2_cfg, speech_wav)[1] == first


def test_bad_input_is_a_one_line_error_before_loading(st2_cfg, speech_wav, tmp_path):
    from demod_voice.engines.styletts2 import plugin as adapter
    from demod_voice.errors import InputError, ModelNotFoundError
    from demod_voice.synthesis import Request

    with pytest.raises(InputError, match="option .alpha.*<= 1.0"):
        adapter.options(Request(text="x", references=[speech_wav], options={"alpha": 1.5}), st2_cfg)
    with pytest.raises(InputError, match="diffusion_steps"):
        adapter.options(Request(text="x", references=[speech_wav], options={"diffusion_steps": 0}), st2_cfg)
    with pytest.raises(InputError, match="English"):
        adapter.options(Request(text="x", references=[speech_wav], language="de"), st2_cfg)
    with pytest.raises(InputError, match="reference audio not found"):
        adapter.options(Request(text="x", references=[tmp_path / "none.wav"]), st2_cfg)
    with pytest.raises(ModelNotFoundError, match="models pull styletts2-libritts"):
        adapter.options(Request(text="x", references=[speech_wav], model=str(tmp_path / "nothing")), st2_cfg)


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /tmp/styletts2-pwned",))


def test_malicious_pickle_is_refused(tiny_styletts2, tmp_path):
    from demod_voice.engines import styletts2
    from demod_voice.errors import UnsafeCheckpointError

    folder = tmp_path / "evil"
    folder.mkdir()
    shutil.copy(tiny_styletts2 / "config.yml", folder / "config.yml")
    shutil.copytree(tiny_styletts2 / "plbert", folder / "plbert")
    (folder / "epochs_2nd_00020.pth").write_bytes(pickle.dumps({"net": _Payload()}))
    with pytest.raises(UnsafeCheckpointError) as caught:
        styletts2.load(folder)
    message = caught.value.message + (caught.value.hint or "")
    assert "code that would run on load" in message and "weights_only" not in message
    assert "models pull styletts2-libritts" in message and "RVC" not in message
    assert not (tmp_path / "styletts2-pwned").exists()


def test_config_that_does_not_match_the_weights_is_named(tiny_styletts2, tmp_path):
    import yaml

    from demod_voice.engines import styletts2
    from demod_voice.errors import InputError

    folder = tmp_path / "mismatch"
    shutil.copytree(tiny_styletts2, folder)
    data = yaml.safe_load((folder / "config.yml").read_text())
    data["model_params"]["style_dim"] = 12
    (folder / "config.yml").write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match="does not match config.yml"):
        styletts2.load(folder)


def test_plbert_dir_outside_the_model_folder_is_not_followed(tiny_styletts2, tmp_path):
    """``PLBERT_dir`` in config.yml is only followed inside the model folder (no absolute paths, no '..')."""
    import yaml

    from demod_voice.engines.styletts2 import checkpoint

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.yml").write_text(yaml.safe_dump({"model_params": {"hidden_size": 4}}))
    folder = tmp_path / "model"
    shutil.copytree(tiny_styletts2, folder)
    (folder / "plbert" / "config.yml").unlink()
    data = yaml.safe_load((folder / "config.yml").read_text())
    for named in (str(outside), "../outside"):
        data["PLBERT_dir"] = named
        (folder / "config.yml").write_text(yaml.safe_dump(data))
        assert checkpoint.find(folder).plbert_config is None  # the published PL-BERT sizes are used instead
