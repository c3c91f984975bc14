"""Random-weight checkpoints in the genuine on-disk formats: XTTS-v2 and RVC.

``health --deep`` runs the engines on them when no real model is installed, so a
library release that breaks the engine code shows up without any download; the
tests and benchmarks build theirs with the same functions. The files go through
exactly the loading code real weights take (coqui's ``load_checkpoint`` for XTTS,
``torch.load(weights_only=True)`` for RVC). torch, coqui-tts and transformers are
imported inside the builders only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

# --- XTTS-v2: config.json, model.pth, vocab.json --------------------------------------------------------------


def _xtts_vocab(languages: list[str]) -> dict:
    """coqui's bundled BPE tokenizer plus the [START] and [lang] tokens XTTS needs."""
    import TTS

    source = Path(os.path.dirname(TTS.__file__)) / "tts/utils/assets/tortoise/tokenizer.json"
    tok = json.loads(source.read_text(encoding="utf-8"))
    vocab = tok["model"]["vocab"]
    next_id = max(vocab.values()) + 1
    for token in ["[START]"] + [f"[{code}]" for code in languages]:
        if token in vocab:
            continue
        vocab[token] = next_id
        tok["added_tokens"].append({"id": next_id, "content": token, "single_word": False, "lstrip": False,
                                    "rstrip": False, "normalized": False, "special": True})
        next_id += 1
    return tok


def build_xtts(folder: Path, *, full_size: bool = False, max_audio_tokens: int = 24, seed: int = 0) -> Path:
    """Write a random-weight XTTS-v2 checkpoint folder and return it.

    Tiny: 2 GPT layers, width 64. ``full_size=True``: 30 layers, width 1024, 16 heads, like the
    released model. ``max_audio_tokens`` bounds generation (random weights never emit the stop token).
    """
    import torch
    from TTS.tts.configs.xtts_config import XttsArgs, XttsConfig
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    size = dict(gpt_layers=30, gpt_n_model_channels=1024, gpt_n_heads=16, decoder_input_dim=1024) if full_size \
        else dict(gpt_layers=2, gpt_n_model_channels=64, gpt_n_heads=4, decoder_input_dim=64)
    args = XttsArgs(gpt_use_perceiver_resampler=True, gpt_num_audio_tokens=1026, gpt_start_audio_token=1024,
                    gpt_stop_audio_token=1025, gpt_max_audio_tokens=max_audio_tokens, gpt_max_text_tokens=402,
                    gpt_max_prompt_tokens=70, **size)
    config = XttsConfig(model_args=args)
    # The released config conditions on up to 30 s in 4 s chunks; keep the same shape.
    config.gpt_cond_len, config.gpt_cond_chunk_len, config.max_ref_len = 30, 4, 30
    (folder / "vocab.json").write_text(json.dumps(_xtts_vocab(list(config.languages))), encoding="utf-8")
    torch.manual_seed(seed)
    model = Xtts(config)
    model.tokenizer = VoiceBpeTokenizer(vocab_file=str(folder / "vocab.json"))
    model.init_models()
    # Saved before eval(): load_checkpoint() builds the inference wrapper itself.
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    config.save_json(str(folder / "config.json"))
    return folder


# --- RVC: voice .pth, HuBERT folder, RMVPE state dict ---------------------------------------------------------

#: Full-size hyper-parameters as RVC WebUI writes them (v2 configs).
RVC_FULL_CONFIGS = {
    32000: [513, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5]] * 3, [10, 8, 2, 2], 512,
            [20, 16, 4, 4], 109, 256, 32000],
    40000: [1025, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5]] * 3, [10, 10, 2, 2], 512,
            [16, 16, 4, 4], 109, 256, 40000],
    48000: [1025, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5]] * 3, [12, 10, 2, 2], 512,
            [24, 20, 4, 4], 109, 256, 48000],
}

#: Layers RVC wraps in weight_norm (saved as weight_g / weight_v).
_WEIGHT_NORMED = re.compile(r"^(dec\.ups\.\d+|dec\.resblocks\.\d+\.convs[12]?\.\d+|"
                            r"flow\.flows\.\d+\.enc\.(in_layers\.\d+|res_skip_layers\.\d+|cond_layer))\.weight$")


def rvc_shrunk_config(sample_rate: int = 40000) -> list:
    """Same format and upsampling (so the same hop), far fewer channels: ~2 s per conversion."""
    cfg = list(RVC_FULL_CONFIGS[sample_rate])
    cfg[2] = cfg[3] = 32          # inter / hidden channels
    cfg[4] = 64                   # filter channels
    cfg[6] = 2                    # attention layers
    cfg[10], cfg[11] = [3], [[1, 3, 5]]
    cfg[13] = 32                  # upsample_initial_channel
    cfg[15], cfg[16] = 4, 32      # speakers, gin channels
    return cfg


def _weight_norm_split(state: dict) -> dict:
    import torch

    out = {}
    for key, value in state.items():
        if _WEIGHT_NORMED.match(key):
            prefix = key[: -len(".weight")]
            norm = torch.linalg.vector_norm(value, dim=list(range(1, value.dim())), keepdim=True)
            out[prefix + ".weight_g"] = norm
            out[prefix + ".weight_v"] = value
        else:
            out[key] = value
    return out


def build_rvc_voice(path: Path, version: str = "v2", f0: bool = True, sample_rate: int = 40000, full: bool = False,
                    seed: int = 0) -> Path:
    """An RVC voice ``.pth`` as RVC WebUI exports it: fp16 weights (no enc_q.*), 18-value config, sr, f0, version."""
    import torch

    from demod_voice.engines.rvc.synthesizer import Synthesizer

    torch.manual_seed(seed)
    config = list(RVC_FULL_CONFIGS[sample_rate]) if full else rvc_shrunk_config(sample_rate)
    model = Synthesizer(config, 256 if version == "v1" else 768, f0)
    state = _weight_norm_split({k: v.half() for k, v in model.state_dict().items()})
    ckpt = {"weight": state, "config": config, "info": f"random {version} test voice", "sr": f"{sample_rate // 1000}k",
            "f0": int(f0), "version": version}
    torch.save(ckpt, path)
    return path


def tiny_hubert_config(layers: int = 2):
    from transformers import HubertConfig

    return HubertConfig(hidden_size=768, num_hidden_layers=layers, num_attention_heads=12, intermediate_size=128,
                        conv_dim=[32] * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=16)


def build_hubert_folder(folder: Path, seed: int = 0) -> Path:
    """A transformers HubertModel folder that also holds final_proj (as ContentVec ports do)."""
    import torch
    from transformers import HubertModel

    class HubertWithFinalProj(HubertModel):
        def __init__(self, config):
            super().__init__(config)
            self.final_proj = torch.nn.Linear(config.hidden_size, 256)

    torch.manual_seed(seed)
    HubertWithFinalProj(tiny_hubert_config()).save_pretrained(str(folder))
    return folder


def build_rmvpe(path: Path, full: bool = False, seed: int = 0) -> Path:
    """An RMVPE state dict: full size (the public rmvpe.pt layout) or with fewer channels/blocks."""
    import torch

    from demod_voice.engines.rvc.rmvpe import E2E

    torch.manual_seed(seed)
    model = E2E() if full else E2E(n_blocks=1, base=4, inter_layers=1)
    torch.save(model.state_dict(), path)
    return path


def build_rvc(folder: Path, seed: int = 7) -> tuple[Path, Path, Path]:
    """A shrunk v2/40k RVC voice plus the HuBERT folder and RMVPE weights it needs: (voice, hubert, rmvpe)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    voice = build_rvc_voice(folder / "voice.pth", "v2", True, 40000, seed=seed)
    hubert = build_hubert_folder(folder / "hubert")
    rmvpe = build_rmvpe(folder / "rmvpe.pt")
    return voice, hubert, rmvpe


def cached_build(root: Path, name: str, build) -> Path:
    """Build into a temp folder beside ``root/name`` and rename it into place, so a half-built model never exists."""
    target = root / name
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        build(scratch / "m")
        os.replace(scratch / "m", target)
    except OSError:
        if not target.is_dir():  # another self-test that won the race is fine
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def selftest_root(cfg) -> Path:
    return Path(cfg.cache_dir) / "selftest"
