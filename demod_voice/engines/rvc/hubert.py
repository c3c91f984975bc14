"""Content features from HuBERT / ContentVec on transformers' ``HubertModel``.

Two on-disk forms load here, neither needs fairseq:

* a fairseq checkpoint (``hubert_base.pt``, ContentVec): its ``model`` state
  dict is renamed key by key onto ``HubertModel``; ``final_proj`` (768 -> 256,
  used by v1 voices) is kept beside it;
* a transformers folder (``config.json`` + weights), optionally holding
  ``final_proj.*`` tensors as the ContentVec ports do.

v1 voices take layer 9 through ``final_proj`` (256-d), v2 voices layer 12 (768-d).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch

from demod_voice.engines.rvc.checkpoint import FairseqNamespace, safe_load
from demod_voice.errors import InputError

_LOGGER = logging.getLogger(__name__)

#: fairseq key pattern -> transformers key template
_RENAMES = [
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", r"feature_extractor.conv_layers.\1.conv.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.(weight|bias)", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"layer_norm\.(weight|bias)", r"feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"feature_projection.projection.\1"),
    (r"encoder\.pos_conv\.0\.bias", r"encoder.pos_conv_embed.conv.bias"),
    (r"encoder\.pos_conv\.0\.weight_g", r"encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    (r"encoder\.pos_conv\.0\.weight_v", r"encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.self_attn\.(k|q|v|out)_proj\.(weight|bias)", r"encoder.layers.\1.attention.\2_proj.\3"),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"encoder.layers.\1.layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc1\.(weight|bias)", r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"encoder\.layers\.(\d+)\.fc2\.(weight|bias)", r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.layers.\1.final_layer_norm.\2"),
    (r"mask_emb", r"masked_spec_embed"),
]
#: fairseq tensors only used in pre-training
_TRAINING_ONLY = ("label_embs_concat", "label_embs", "final_proj_list")
_STRIDES = {10: 5, 3: 2, 2: 2}


def _fairseq_model_cfg(ckpt: dict) -> dict:
    cfg = ckpt.get("cfg")
    if isinstance(cfg, dict) and isinstance(cfg.get("model"), dict):
        return cfg["model"]
    args = ckpt.get("args")
    if isinstance(args, FairseqNamespace):
        return vars(args)
    if isinstance(args, dict):
        return args
    return {}


def rename_fairseq(state: dict) -> tuple[dict, dict]:
    """fairseq HuBERT keys -> (transformers ``HubertModel`` keys, ``final_proj`` tensors)."""
    mapped: dict = {}
    final_proj: dict = {}
    unknown: list[str] = []
    for key, value in state.items():
        if key.startswith("final_proj."):
            final_proj[key.split(".", 1)[1]] = value
            continue
        if key.split(".")[0] in _TRAINING_ONLY:
            continue
        for pattern, template in _RENAMES:
            if re.fullmatch(pattern, key):
                mapped[re.sub(pattern, template, key)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(", ".join(unknown[:4]))
    return mapped, final_proj


def _config_from_fairseq(state: dict, model_cfg: dict):
    from transformers import HubertConfig

    convs = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.0\.weight", k)))
    if not convs or "post_extract_proj.weight" not in state:
        raise KeyError("feature_extractor.conv_layers / post_extract_proj")
    conv_dim = [int(state[f"feature_extractor.conv_layers.{i}.0.weight"].shape[0]) for i in convs]
    conv_kernel = [int(state[f"feature_extractor.conv_layers.{i}.0.weight"].shape[2]) for i in convs]
    hidden = int(state["post_extract_proj.weight"].shape[0])
    layers = len({k.split(".")[2] for k in state if k.startswith("encoder.layers.")})
    pos = state["encoder.pos_conv.0.weight_v"]
    if model_cfg.get("layer_norm_first"):
        raise InputError("this HuBERT checkpoint uses pre-norm layers (layer_norm_first), which RVC does not use",
                         hint="use hubert_base.pt or ContentVec")
    return HubertConfig(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=int(model_cfg.get("encoder_attention_heads", 12)),
        intermediate_size=int(state["encoder.layers.0.fc1.weight"].shape[0]),
        conv_dim=conv_dim,
        conv_kernel=conv_kernel,
        conv_stride=[_STRIDES.get(k, 2) for k in conv_kernel],
        conv_bias="feature_extractor.conv_layers.0.0.bias" in state,
        feat_extract_norm="layer" if "feature_extractor.conv_layers.0.2.1.weight" in state else "group",
        num_conv_pos_embeddings=int(pos.shape[2]),
        num_conv_pos_embedding_groups=hidden // int(pos.shape[1]),
        do_stable_layer_norm=False,
    )


class ContentEncoder:
    """A loaded HuBERT with the RVC feature read-outs."""

    def __init__(self, model, final_proj: torch.nn.Linear | None, source: Path, device: str = "cpu"):
        self.model = model.eval().to(device)
        self.final_proj = final_proj.eval().to(device) if final_proj is not None else None
        self.source = source
        self.device = device

    @torch.no_grad()
    def features(self, audio16k: torch.Tensor, version: str) -> torch.Tensor:
        """``[N]`` float audio at 16 kHz -> ``[1, frames, 256|768]`` at 50 frames/s."""
        layer = 9 if version == "v1" else 12
        n_layers = self.model.config.num_hidden_layers
        if layer > n_layers:  # shrunk test models: take the last layer
            layer = n_layers
        x = audio16k.to(self.device, dtype=next(self.model.parameters()).dtype).reshape(1, -1)
        out = self.model(x, output_hidden_states=True)
        feats = out.hidden_states[layer]
        if version == "v1":
            if self.final_proj is None:
                raise InputError(f"v1 voices need HuBERT's final projection, which {self.source} lacks",
                                 hint="use hubert_base.pt (fairseq) or a ContentVec folder that includes final_proj")
            feats = self.final_proj(feats)
        return feats.float()


def _linear(weights: dict) -> torch.nn.Linear | None:
    if "weight" not in weights:
        return None
    w = weights["weight"].float()
    lin = torch.nn.Linear(w.shape[1], w.shape[0], bias="bias" in weights)
    lin.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
    return lin


def _load_fairseq(path: Path) -> tuple:
    from transformers import HubertModel

    ckpt = safe_load(path, "HuBERT checkpoint")
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise InputError(f"{path} is not a fairseq HuBERT checkpoint (no 'model' state dict)",
                         hint="pass hubert_base.pt, a ContentVec .pt, or a transformers HubertModel folder")
    state = ckpt["model"]
    try:
        config = _config_from_fairseq(state, _fairseq_model_cfg(ckpt))
        mapped, final_proj = rename_fairseq(state)
    except KeyError as exc:
        raise InputError(f"{path} does not look like a HuBERT/ContentVec checkpoint: unknown or missing keys "
                         f"({exc.args[0]})", hint="pass hubert_base.pt or ContentVec") from None
    model = HubertModel(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(mapped) - {"masked_spec_embed"})
    extra = sorted(set(mapped) - set(expected))
    if missing or extra:
        raise InputError(f"{path}: HuBERT weights do not match ({len(missing)} missing e.g. {missing[:2]}, "
                         f"{len(extra)} unexpected e.g. {extra[:2]})")
    mapped.setdefault("masked_spec_embed", expected["masked_spec_embed"])
    model.load_state_dict({k: v.float() for k, v in mapped.items()}, strict=True)
    return model, _linear(final_proj)


def _read_folder_weights(folder: Path) -> dict:
    files = sorted(folder.glob("*.safetensors"))
    if files:
        from safetensors.torch import load_file

        state: dict = {}
        for file in files:
            state.update(load_file(str(file)))
        return state
    files = sorted(folder.glob("pytorch_model*.bin"))
    if files:
        state = {}
        for file in files:
            state.update(safe_load(file, "HuBERT weights"))
        return state
    raise InputError(f"HuBERT folder {folder} holds no weights (model.safetensors or pytorch_model.bin)")


def _load_folder(folder: Path) -> tuple:
    from transformers import HubertConfig, HubertModel

    if not (folder / "config.json").is_file():
        raise InputError(f"HuBERT folder {folder} has no config.json",
                         hint="pass a folder saved with HubertModel.save_pretrained, or hubert_base.pt")
    try:
        config = HubertConfig.from_pretrained(str(folder))
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {folder / 'config.json'}: {str(exc).strip()[:240]}") from None
    state = _read_folder_weights(folder)
    state = {k[len("hubert."):] if k.startswith("hubert.") else k: v for k, v in state.items()}
    final_proj = {k.split(".", 1)[1]: state.pop(k) for k in list(state) if k.startswith("final_proj.")}
    model = HubertModel(config)
    expected = model.state_dict()
    for key in list(state):  # older saves keep the pre-parametrization weight-norm names
        for old, new in ((".weight_g", ".parametrizations.weight.original0"),
                         (".weight_v", ".parametrizations.weight.original1")):
            if key.endswith(old) and key[: -len(old)] + new in expected:
                state[key[: -len(old)] + new] = state.pop(key)
    missing = sorted(set(expected) - set(state) - {"masked_spec_embed"})
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise InputError(f"{folder}: HuBERT weights do not match its config.json ({len(missing)} missing e.g. "
                         f"{missing[:2]}, {len(extra)} unexpected e.g. {extra[:2]})")
    state.setdefault("masked_spec_embed", expected["masked_spec_embed"])
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model, _linear(final_proj)


def load(path: str | Path, device: str = "cpu") -> ContentEncoder:
    """A fairseq checkpoint file or a transformers folder -> ``ContentEncoder``."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"HuBERT weights not found: {path}")
    model, final_proj = _load_folder(path) if path.is_dir() else _load_fairseq(path)
    _LOGGER.info("loaded HuBERT from %s (%d layers%s)", path, model.config.num_hidden_layers,
                 ", final_proj" if final_proj is not None else "")
    return ContentEncoder(model, final_proj, path, device)
