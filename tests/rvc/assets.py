"""Random-weight RVC assets in the genuine on-disk formats (for tests and bench/rvc_convert.py).

* voice ``.pth``: ``{"weight": fp16 state dict with weight_g/weight_v for the
  weight-normalised layers and no enc_q.*, "config": [18 values], "info",
  "sr": "40k", "f0": 1|0, "version": "v1"|"v2"}`` — what RVC WebUI exports;
* HuBERT as a transformers folder (``save_pretrained``, with ``final_proj``
  like the ContentVec ports) or as a fairseq checkpoint (fairseq key names,
  ``cfg`` dict and a pickled ``fairseq.data.dictionary.Dictionary`` in
  ``task_state`` like the real ``hubert_base.pt``);
* a faiss ``IVF{n},Flat`` index; an RMVPE state dict.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import torch

# The voice, HuBERT-folder and RMVPE builders live in the package (health --deep uses them too).
from demod_voice.tiny_models import RVC_FULL_CONFIGS as FULL_CONFIGS  # noqa: F401
from demod_voice.tiny_models import build_hubert_folder as make_hubert_folder  # noqa: F401
from demod_voice.tiny_models import build_rmvpe as make_rmvpe  # noqa: F401
from demod_voice.tiny_models import build_rvc_voice as make_voice  # noqa: F401
from demod_voice.tiny_models import rvc_shrunk_config as shrunk_config  # noqa: F401
from demod_voice.tiny_models import tiny_hubert_config

_TO_FAIRSEQ = [
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.(\w+)", r"feature_extractor.conv_layers.\1.0.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.(\w+)", r"feature_extractor.conv_layers.\1.2.\2"),
    (r"feature_projection\.layer_norm\.(\w+)", r"layer_norm.\1"),
    (r"feature_projection\.projection\.(\w+)", r"post_extract_proj.\1"),
    (r"encoder\.pos_conv_embed\.conv\.bias", r"encoder.pos_conv.0.bias"),
    (r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0", r"encoder.pos_conv.0.weight_g"),
    (r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1", r"encoder.pos_conv.0.weight_v"),
    (r"encoder\.layer_norm\.(\w+)", r"encoder.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.attention\.(\w+)_proj\.(\w+)", r"encoder.layers.\1.self_attn.\2_proj.\3"),
    (r"encoder\.layers\.(\d+)\.layer_norm\.(\w+)", r"encoder.layers.\1.self_attn_layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.(\w+)", r"encoder.layers.\1.fc1.\2"),
    (r"encoder\.layers\.(\d+)\.feed_forward\.output_dense\.(\w+)", r"encoder.layers.\1.fc2.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(\w+)", r"encoder.layers.\1.final_layer_norm.\2"),
    (r"masked_spec_embed", r"mask_emb"),
]


class _Dictionary:
    """Pickled under fairseq's name, like the task dictionaries inside hubert_base.pt."""


def make_fairseq_hubert(path: Path, seed: int = 1) -> Path:
    from transformers import HubertModel

    torch.manual_seed(seed)
    config = tiny_hubert_config()
    model = HubertModel(config)
    state = {}
    for key, value in model.state_dict().items():
        for pattern, template in _TO_FAIRSEQ:
            if re.fullmatch(pattern, key):
                state[re.sub(pattern, template, key)] = value
                break
        else:
            raise KeyError(key)
    state["final_proj.weight"] = torch.randn(256, 768) * 0.02
    state["final_proj.bias"] = torch.zeros(256)
    state["label_embs_concat"] = torch.randn(504, 256)
    cfg = {"_name": None, "common": {"fp16": False},
           "model": {"_name": "hubert", "extractor_mode": "default", "encoder_layers": config.num_hidden_layers,
                     "encoder_embed_dim": 768, "encoder_ffn_embed_dim": config.intermediate_size,
                     "encoder_attention_heads": config.num_attention_heads, "layer_norm_first": False,
                     "conv_feature_layers": "[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2", "final_dim": 256},
           "task": {"_name": "hubert_pretraining", "labels": ["km"]}}
    dictionary = _Dictionary()
    dictionary.__dict__.update({"bos_word": "<s>", "unk_word": "<unk>", "pad_word": "<pad>", "eos_word": "</s>",
                                "symbols": ["<s>", "<pad>", "</s>", "<unk>", "0", "1"], "count": [1, 1, 1, 1, 5, 5],
                                "indices": {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "0": 4, "1": 5},
                                "nspecial": 4})
    names = ["fairseq", "fairseq.data", "fairseq.data.dictionary"]
    saved = {n: sys.modules.get(n) for n in names}
    try:
        for n in names:
            sys.modules[n] = types.ModuleType(n)
        sys.modules["fairseq.data.dictionary"].Dictionary = _Dictionary
        _Dictionary.__module__, _Dictionary.__qualname__, _Dictionary.__name__ = (
            "fairseq.data.dictionary", "Dictionary", "Dictionary")
        torch.save({"args": None, "cfg": cfg, "model": state, "optimizer_history": [],
                    "task_state": {"dictionaries": [dictionary]}}, path)
    finally:
        for n, module in saved.items():
            if module is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = module
    return path


def make_index(path: Path, dim: int, n: int = 512, lists: int = 8, seed: int = 0) -> Path:
    import faiss

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    index = faiss.index_factory(dim, f"IVF{lists},Flat")
    index.train(vectors)
    faiss.extract_index_ivf(index).nprobe = 1
    index.add(vectors)
    faiss.write_index(index, str(path))
    return path


class _Boom:
    """Unpickling this creates ``target`` -- what a malicious checkpoint would do."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def make_malicious(path: Path, target: Path) -> Path:
    """A .pth whose unpickling would create ``target`` (wrapped the way a trojan voice file would be)."""
    torch.save({"weight": {"x": torch.zeros(1)}, "config": [0] * 18, "payload": _Boom(str(target))}, path)
    return path
