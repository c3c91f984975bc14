"""Safe loading (malicious pickles never run), strict key matching, the genuine file formats."""

from __future__ import annotations

import pytest
import torch

from tests.rvc import assets


@pytest.fixture
def malicious(tmp_path):
    marker = tmp_path / "pwned"
    return assets.make_malicious(tmp_path / "evil.pth", marker), marker


def test_malicious_model_is_refused_in_a_real_process(cli, malicious, rvc_assets, short_speech, tmp_path):
    evil, marker = malicious
    out = tmp_path / "never.wav"
    proc = cli("rvc-convert", short_speech, "--model", evil, "--hubert", rvc_assets["hubert_dir"], "-o", out)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "refusing to load RVC model" in err and "arbitrary unpickling" in err
    assert "holds code that would run on load" in err and "safetensors" in err  # why, and what is safe
    assert "weights_only" not in err and "Warning" not in err  # never torch's advice to switch the check off
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert not marker.exists()
    assert not out.exists()


@pytest.mark.parametrize("flag", ["--hubert", "--rmvpe"])
def test_malicious_aux_weights_are_refused(run_main, malicious, rvc_assets, short_speech, tmp_path, flag):
    evil, marker = malicious
    out = tmp_path / "never.wav"
    args = {"--hubert": rvc_assets["hubert_dir"], "--rmvpe": rvc_assets["rmvpe"]}
    args[flag] = evil
    code, err = run_main("rvc-convert", short_speech, "--model", rvc_assets["v2"], "--f0-method", "rmvpe",
                         "--hubert", args["--hubert"], "--rmvpe", args["--rmvpe"], "-o", out)
    assert code == 2, err
    assert "refusing to load" in err and "arbitrary unpickling" in err
    assert not marker.exists()
    assert not out.exists()


def test_malicious_model_cannot_be_registered(run_main, malicious):
    evil, marker = malicious
    code, err = run_main("rvc", "add", "evil", evil)
    assert code == 2 and "refusing" in err
    assert not marker.exists()


def test_voice_file_has_the_rvc_webui_layout(rvc_assets):
    """Key names a real RVC v2 f0 export holds (from the published model), checked by hand."""
    ckpt = torch.load(rvc_assets["v2"], map_location="cpu", weights_only=True)
    assert set(ckpt) == {"weight", "config", "info", "sr", "f0", "version"}
    assert ckpt["sr"] == "40k" and ckpt["f0"] == 1 and ckpt["version"] == "v2" and len(ckpt["config"]) == 18
    weights = ckpt["weight"]
    for key in ["enc_p.emb_phone.weight", "enc_p.emb_pitch.weight", "enc_p.encoder.attn_layers.0.conv_q.weight",
                "enc_p.encoder.attn_layers.0.emb_rel_k", "enc_p.encoder.norm_layers_1.0.gamma",
                "enc_p.encoder.ffn_layers.0.conv_1.weight", "enc_p.proj.weight", "dec.conv_pre.weight",
                "dec.ups.0.weight_g", "dec.ups.0.weight_v", "dec.resblocks.0.convs1.0.weight_v",
                "dec.resblocks.0.convs2.2.weight_g", "dec.noise_convs.0.weight", "dec.m_source.l_linear.weight",
                "dec.conv_post.weight", "dec.cond.weight", "flow.flows.0.pre.weight",
                "flow.flows.0.enc.in_layers.0.weight_g", "flow.flows.0.enc.res_skip_layers.2.weight_v",
                "flow.flows.0.enc.cond_layer.weight_g", "flow.flows.6.post.weight", "emb_g.weight"]:
        assert key in weights, key
    assert not any(k.startswith("enc_q.") for k in weights)
    assert not any(k.startswith("flow.flows.1.") for k in weights)  # Flip layers hold nothing
    assert all(v.dtype == torch.float16 for v in weights.values())
    assert "enc_p.emb_pitch.weight" not in torch.load(rvc_assets["v2_nof0"], weights_only=True)["weight"]


def test_full_size_v2_40k_matches_the_published_shapes(tmp_path):
    """The full-size network has the shapes of a real v2/40k export (~36.5 M params incl. enc_q-less parts)."""
    from demod_voice.engines.rvc.synthesizer import Synthesizer

    model = Synthesizer(assets.FULL_CONFIGS[40000], 768, True)
    sd = model.state_dict()
    assert tuple(sd["enc_p.emb_phone.weight"].shape) == (192, 768)
    assert tuple(sd["enc_p.encoder.attn_layers.0.emb_rel_k"].shape) == (1, 21, 96)
    assert tuple(sd["dec.ups.0.weight"].shape) == (512, 256, 16)
    assert tuple(sd["dec.noise_convs.0.weight"].shape) == (256, 1, 80)
    assert tuple(sd["dec.noise_convs.3.weight"].shape) == (32, 1, 1)
    assert tuple(sd["flow.flows.0.enc.cond_layer.weight"].shape) == (1152, 256, 1)
    assert tuple(sd["emb_g.weight"].shape) == (109, 256)


def test_strict_keys_reject_a_damaged_model(run_main, rvc_assets, short_speech, tmp_path):
    ckpt = torch.load(rvc_assets["v2"], map_location="cpu", weights_only=True)
    del ckpt["weight"]["dec.conv_post.weight"]
    ckpt["weight"]["dec.extra.weight"] = torch.zeros(1)
    damaged = tmp_path / "damaged.pth"
    torch.save(ckpt, damaged)
    code, err = run_main("rvc-convert", short_speech, "--model", damaged, "--hubert", rvc_assets["hubert_dir"],
                         "-o", tmp_path / "never.wav")
    assert code == 2
    assert "does not match" in err and "dec.conv_post.weight" in err and "dec.extra.weight" in err
    assert not (tmp_path / "never.wav").exists()


def test_not_an_rvc_model(run_main, rvc_assets, short_speech, tmp_path):
    code, err = run_main("rvc-convert", short_speech, "--model", rvc_assets["rmvpe"], "--hubert",
                         rvc_assets["hubert_dir"], "-o", tmp_path / "x.wav")
    assert code == 2 and "is not an RVC voice model" in err


def test_fairseq_hubert_maps_to_the_same_network(rvc_assets):
    """The fairseq checkpoint (with a pickled fairseq Dictionary) loads without fairseq; every key maps."""
    from demod_voice.engines.rvc import hubert
    from demod_voice.engines.rvc.checkpoint import FairseqDictionary, safe_load

    raw = safe_load(rvc_assets["hubert_pt"])
    assert isinstance(raw["task_state"]["dictionaries"][0], FairseqDictionary)
    assert raw["task_state"]["dictionaries"][0].symbols[:2] == ["<s>", "<pad>"]
    encoder = hubert.load(rvc_assets["hubert_pt"])
    feats = encoder.features(torch.zeros(16000), "v1")
    assert tuple(feats.shape) == (1, 49, 256)
    assert tuple(encoder.features(torch.zeros(16000), "v2").shape) == (1, 49, 768)
    mapped, final_proj = hubert.rename_fairseq({
        "encoder.layers.11.self_attn.k_proj.weight": 0, "encoder.pos_conv.0.weight_g": 0,
        "feature_extractor.conv_layers.0.2.weight": 0, "post_extract_proj.bias": 0, "mask_emb": 0,
        "final_proj.weight": 0, "label_embs_concat": 0})
    assert set(mapped) == {"encoder.layers.11.attention.k_proj.weight",
                           "encoder.pos_conv_embed.conv.parametrizations.weight.original0",
                           "feature_extractor.conv_layers.0.layer_norm.weight",
                           "feature_projection.projection.bias", "masked_spec_embed"}
    assert set(final_proj) == {"weight"}


def test_rmvpe_network_matches_the_public_layout():
    from demod_voice.engines.rvc.rmvpe import E2E

    sd = E2E().state_dict()
    for key in ["unet.encoder.bn.weight", "unet.encoder.layers.0.conv.0.conv.0.weight",
                "unet.encoder.layers.0.conv.0.shortcut.weight", "unet.encoder.layers.4.conv.3.conv.4.running_var",
                "unet.intermediate.layers.3.conv.3.conv.3.weight", "unet.decoder.layers.0.conv1.0.weight",
                "unet.decoder.layers.4.conv2.0.shortcut.bias", "cnn.weight", "fc.0.gru.weight_ih_l0_reverse",
                "fc.1.weight"]:
        assert key in sd, key
    assert tuple(sd["fc.1.weight"].shape) == (360, 512)
    assert tuple(sd["fc.0.gru.weight_ih_l0"].shape) == (768, 384)
