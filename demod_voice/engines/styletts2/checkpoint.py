"""The StyleTTS2 checkpoint folder: ``config.yml`` + one ``.pth`` (``{"net": {sub-network: state dict}}``),
and PL-BERT's own ``config.yml``.

The ``.pth`` is read weights-only (``torch.load(weights_only=True)``): a file that needs arbitrary unpickling is
refused. Only the sub-networks inference runs are kept (``bert``, ``bert_encoder``, ``predictor``, ``decoder``,
``text_encoder``, ``predictor_encoder``, ``style_encoder``, ``diffusion``); the training-only ones (text aligner,
pitch extractor, discriminators) are ignored. Keys may carry DataParallel's ``module.`` prefix. Weight norms and
spectral norms are folded into plain weights here, so the networks are ordinary layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from demod_voice.errors import InputError, ModelNotFoundError

INFERENCE_NETS = ("bert", "bert_encoder", "predictor", "decoder", "text_encoder", "predictor_encoder",
                  "style_encoder", "diffusion")
#: PL-BERT as published (used when the folder has no PL-BERT config: the weights are in the ``.pth``).
PLBERT_DEFAULT = {"vocab_size": 178, "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 2048,
                  "max_position_embeddings": 512, "num_hidden_layers": 12, "dropout": 0.1}
_REQUIRED = ("dim_in", "hidden_dim", "max_conv_dim", "n_layer", "n_mels", "n_token", "max_dur", "style_dim",
             "decoder", "diffusion")
_DECODER_KEYS = ("resblock_kernel_sizes", "upsample_rates", "upsample_initial_channel", "resblock_dilation_sizes",
                 "upsample_kernel_sizes")


@dataclass(frozen=True)
class ModelFiles:
    folder: Path
    config: Path
    weights: Path
    plbert_config: Path | None


def find(folder: Path) -> ModelFiles:
    """The config, the weights and PL-BERT's config in ``folder`` (one error naming what is missing)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ModelNotFoundError(f"StyleTTS2 model folder not found: {folder}",
                                 hint="run 'demod-voice models pull styletts2-libritts --accept-license' or set "
                                      "styletts2.model_dir")
    nested = folder / "Models" / "LibriTTS"  # the layout of the hub repository (``models pull styletts2-libritts``)
    if not (folder / "config.yml").is_file() and (nested / "config.yml").is_file():
        folder = nested
    config = folder / "config.yml"
    if not config.is_file():
        raise ModelNotFoundError(f"no config.yml in the StyleTTS2 folder {folder}",
                                 hint="the folder holds config.yml and the .pth of a StyleTTS2 checkpoint")
    weights = sorted(folder.glob("*.pth"))
    if not weights:
        raise ModelNotFoundError(f"no .pth checkpoint in the StyleTTS2 folder {folder}",
                                 hint="e.g. epochs_2nd_00020.pth from yl4579/StyleTTS2-LibriTTS")
    if len(weights) > 1:
        raise InputError(f"several .pth files in the StyleTTS2 folder {folder}: "
                         + ", ".join(p.name for p in weights), hint="keep one checkpoint per folder")
    plbert = None
    for candidate in _plbert_dirs(folder, config):
        if (candidate / "config.yml").is_file():
            plbert = candidate / "config.yml"
            break
    return ModelFiles(folder, config, weights[0], plbert)


def _plbert_dirs(folder: Path, config: Path) -> list[Path]:
    found = []
    try:
        named = read_yaml(config).get("PLBERT_dir")
    except InputError:
        named = None
    if isinstance(named, str) and named and not Path(named).is_absolute() and ".." not in Path(named).parts:
        found.append(folder / named)
    return found + [folder / "plbert", folder / "PLBERT"]


def read_yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read {path}: {str(exc).splitlines()[0][:200]}", hint="a YAML file") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a YAML mapping")
    return data


def model_params(path: Path) -> dict:
    """``model_params`` of a StyleTTS2 ``config.yml``, checked for what inference needs."""
    data = read_yaml(path)
    params = data.get("model_params")
    if not isinstance(params, dict):
        raise InputError(f"{path} has no model_params", hint="use the config.yml that came with the checkpoint")
    missing = [k for k in _REQUIRED if k not in params]
    decoder = params.get("decoder") or {}
    missing += [f"decoder.{k}" for k in _DECODER_KEYS if k not in decoder]
    diffusion = params.get("diffusion") or {}
    missing += [f"diffusion.{k}" for k in ("transformer", "dist") if k not in diffusion]
    if missing:
        raise InputError(f"{path}: model_params lacks {', '.join(missing)}")
    if decoder.get("type", "hifigan") != "hifigan":
        raise InputError(f"{path}: decoder type '{decoder.get('type')}' is not supported",
                         hint="the LibriTTS checkpoint's HiFi-GAN decoder is; the iSTFTNet one (LJSpeech) is not yet")
    if not params.get("multispeaker", True):
        raise InputError(f"{path}: single-speaker checkpoints (multispeaker: false) are not supported",
                         hint="use the multi-speaker LibriTTS checkpoint")
    if params["n_token"] != 178:
        raise InputError(f"{path}: n_token is {params['n_token']}, the phoneme table has 178 symbols")
    return params


def plbert_params(path: Path | None) -> dict:
    if path is None:
        return dict(PLBERT_DEFAULT)
    params = read_yaml(path).get("model_params")
    if not isinstance(params, dict):
        raise InputError(f"{path} has no model_params", hint="PL-BERT's config.yml")
    return params


def load_nets(path: Path) -> dict[str, dict]:
    """``{net: state dict}`` of the inference networks, ``module.`` stripped and norms folded."""
    from demod_voice.engines.rvc.checkpoint import safe_load

    data = safe_load(path, "StyleTTS2 checkpoint",
                     safe_formats="the safe format is a weights-only PyTorch .pth (tensors, numbers, strings, lists "
                                  "and dicts), as the StyleTTS2 repository publishes it: get it with 'demod-voice "
                                  "models pull styletts2-libritts'")
    nets = data.get("net") if isinstance(data, dict) else None
    if not isinstance(nets, dict):
        raise InputError(f"{path} is not a StyleTTS2 checkpoint (no 'net' dictionary)",
                         hint="the .pth of a StyleTTS2 second-stage checkpoint")
    missing = [name for name in INFERENCE_NETS if not isinstance(nets.get(name), dict)]
    if missing:
        raise InputError(f"{path} lacks the network(s) {', '.join(missing)}",
                         hint="a second-stage StyleTTS2 checkpoint holds all of them")
    return {name: fold_norms(strip_prefix(nets[name])) for name in INFERENCE_NETS}


def strip_prefix(state: dict) -> dict:
    return {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}


def fold_norms(state: dict) -> dict:
    """Replace weight-norm (``weight_g``/``weight_v``, or parametrizations) and spectral-norm
    (``weight_orig``/``weight_u``/``weight_v``) entries by the ``weight`` they stand for."""
    import torch

    out = dict(state)
    for key in [k for k in state if k.endswith(".weight_orig")]:
        base = key[: -len("weight_orig")]
        w, u, v = state[key], state.get(base + "weight_u"), state.get(base + "weight_v")
        if u is None or v is None:
            raise InputError(f"spectral norm of {base[:-1]} is incomplete in the checkpoint")
        sigma = torch.dot(u.float(), (w.reshape(w.shape[0], -1).float() @ v.float()))
        out[base + "weight"] = (w.float() / sigma).to(w.dtype)
        for suffix in ("weight_orig", "weight_u", "weight_v"):
            out.pop(base + suffix, None)
    pairs = [(k[: -len("weight_g")], "weight_g", "weight_v") for k in state if k.endswith(".weight_g")]
    pairs += [(k[: -len("parametrizations.weight.original0")], "parametrizations.weight.original0",
               "parametrizations.weight.original1") for k in state if k.endswith(".parametrizations.weight.original0")]
    for base, g_key, v_key in pairs:
        g, v = out.pop(base + g_key), out.pop(base + v_key, None)
        if v is None:
            raise InputError(f"weight norm of {base[:-1]} is incomplete in the checkpoint")
        norm = v.float().reshape(v.shape[0], -1).norm(dim=1).reshape(-1, *([1] * (v.dim() - 1)))
        out[base + "weight"] = (g.float() * v.float() / norm).to(v.dtype)
    return out
