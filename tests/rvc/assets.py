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

#: Full-size hyper-parameters as RVC WebUI writes them (v2 configs).
FULL_CONFIGS = {
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


def shrunk_config(sample_rate: int = 40000) -> list:
    """Same format and upsampling (so the same hop), far fewer channels: ~2 s per conversion."""
    cfg = list(FULL_CONFIGS[sample_rate])
    cfg[2] = cfg[3] = 32          # inter / hidden channels
    cfg[4] = 64                   # filter channels
    cfg[6] = 2                    # attention layers
    cfg[10], cfg[11] = [3], [[1, 3, 5]]
    cfg[13] = 32                  # upsample_initial_channel
    cfg[15], cfg[16] = 4, 32      # speakers, gin channels
    return cfg


def _weight_norm_split(state: dict) -> dict:
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


def make_voice(path: Path, version: str = "v2", f0: bool = True, sample_rate: int = 40000, full: bool = False,
               seed: int = 0) -> Path:
    from demod_voice.engines.rvc.synthesizer import Synthesizer

    torch.manual_seed(seed)
    config = list(FULL_CONFIGS[sample_rate]) if full else shrunk_config(sample_rate)
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


def make_hubert_folder(folder: Path, seed: int = 0) -> Path:
    """A transformers HubertModel folder that also holds final_proj (as ContentVec ports do)."""
    from transformers import HubertModel

    class HubertWithFinalProj(HubertModel):
        def __init__(self, config):
            super().__init__(config)
            self.final_proj = torch.nn.Linear(config.hidden_size, 256)

    torch.manual_seed(seed)
    HubertWithFinalProj(tiny_hubert_config()).save_pretrained(str(folder))
    return folder


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


def make_rmvpe(path: Path, full: bool = False, seed: int = 0) -> Path:
    """An RMVPE state dict: full size (the public rmvpe.pt layout) or with fewer channels/blocks."""
    from demod_voice.engines.rvc.rmvpe import E2E

    torch.manual_seed(seed)
    model = E2E() if full else E2E(n_blocks=1, base=4, inter_layers=1)
    torch.save(model.state_dict(), path)
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
