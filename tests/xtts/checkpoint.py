"""Random-weight XTTS-v2 checkpoints in the genuine on-disk layout (config.json, model.pth, vocab.json).

Used by the tests (tiny: 2 GPT layers, width 64) and by bench/xtts_latents.py
(``full_size=True``: 30 layers, width 1024, 16 heads, like the released model).
The files go through exactly the loading code a real checkpoint takes:
``XttsConfig.load_json`` + ``Xtts(config)`` + ``load_checkpoint``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def _vocab(languages: list[str]) -> dict:
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


def build(folder: Path, *, full_size: bool = False, max_audio_tokens: int = 24, seed: int = 0) -> Path:
    """Write a random-weight XTTS checkpoint folder and return it."""
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
    (folder / "vocab.json").write_text(json.dumps(_vocab(list(config.languages))), encoding="utf-8")
    torch.manual_seed(seed)
    model = Xtts(config)
    model.tokenizer = VoiceBpeTokenizer(vocab_file=str(folder / "vocab.json"))
    model.init_models()
    # Saved before eval(): load_checkpoint() builds the inference wrapper itself.
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    config.save_json(str(folder / "config.json"))
    return folder
