"""A StyleTTS2 checkpoint folder with random weights in the official LibriTTS layout (tests, ``health --deep``).

``config.yml`` (small dims, one layer, one diffusion transformer layer), ``plbert/config.yml`` and one ``.pth``
holding ``{"net": {...}}``: every inference network with DataParallel's ``module.`` prefix, weight-normalised
layers stored as ``weight_g``/``weight_v``, spectral-normalised ones as ``weight_orig``/``weight_u``/``weight_v``,
the diffusion transformer under both ``diffusion.net.`` and ``unet.``, and training-only networks the engine
must ignore. The engine loads it through the same code as the real checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import yaml

PLBERT = {"vocab_size": 178, "hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32,
          "max_position_embeddings": 512, "num_hidden_layers": 1, "embedding_size": 8, "dropout": 0.1}
MODEL_PARAMS = {
    "multispeaker": True, "dim_in": 4, "hidden_dim": 16, "max_conv_dim": 16, "n_layer": 1, "n_mels": 80,
    "n_token": 178, "max_dur": 8, "style_dim": 8, "dropout": 0.2,
    "decoder": {"type": "hifigan", "resblock_kernel_sizes": [3], "upsample_rates": [10, 5, 3, 2],
                "upsample_initial_channel": 16, "resblock_dilation_sizes": [[1, 3, 5]],
                "upsample_kernel_sizes": [20, 10, 6, 4]},
    "slm": {"model": "microsoft/wavlm-base-plus", "sr": 16000, "hidden": 768, "nlayers": 13, "initial_channel": 64},
    "diffusion": {"embedding_mask_proba": 0.1,
                  "transformer": {"num_layers": 1, "num_heads": 2, "head_features": 4, "multiplier": 2},
                  "dist": {"sigma_data": 0.2, "estimate_sigma_data": True, "mean": -3.0, "std": 1.0}},
}


def _stored(module) -> dict:
    """A module's state dict as the official training code saved it (norms unfolded)."""
    import torch

    state = dict(module.state_dict())
    for name, layer in module.named_modules():
        kind = getattr(layer, "stored_norm", None)
        if kind is None:
            continue
        prefix = f"{name}." if name else ""
        weight = state.pop(prefix + "weight")
        if kind == "weight":
            state[prefix + "weight_g"] = weight.reshape(weight.shape[0], -1).norm(dim=1).reshape(
                -1, *([1] * (weight.dim() - 1)))
            state[prefix + "weight_v"] = weight.clone()
        else:  # spectral: the raw weight and its converged power-iteration vectors (in use: weight / top σ)
            matrix = weight.reshape(weight.shape[0], -1)
            u, _, vh = torch.linalg.svd(matrix, full_matrices=False)
            state[prefix + "weight_orig"] = weight.clone()
            state[prefix + "weight_u"] = u[:, 0].contiguous()
            state[prefix + "weight_v"] = vh[0].contiguous()
    return state


def build_tiny_styletts2(folder: Path, seed: int = 0, width: int = 24, asr_width: int = 8,
                         reference_sizes: bool = False) -> Path:
    """Write the folder (config.yml, plbert/config.yml, epochs_2nd_00020.pth); returns it.

    ``width``/``asr_width``: the decoder's inner widths, which the official code fixes at 1024 and 64 (the
    parity tests build those so the reference implementation can load the file). ``reference_sizes``: also
    the sizes its decoder hard-codes (512 hidden and upsampling channels), so its code can run the file.
    """
    import torch

    from demod_voice.engines.styletts2 import build

    folder = Path(folder)
    params = MODEL_PARAMS
    if reference_sizes:
        params = {**MODEL_PARAMS, "hidden_dim": 512, "decoder": {**MODEL_PARAMS["decoder"], "upsample_initial_channel": 512}}
        width, asr_width = 1024, 64
    (folder / "plbert").mkdir(parents=True, exist_ok=True)
    (folder / "config.yml").write_text(yaml.safe_dump({"PLBERT_dir": "plbert", "model_params": params,
                                                       "preprocess_params": {"sr": 24000}}))
    (folder / "plbert" / "config.yml").write_text(yaml.safe_dump({"model_params": PLBERT}))
    torch.manual_seed(seed)
    nets = build.networks(params, PLBERT, width=width, asr_width=asr_width)
    with torch.no_grad():
        for module in nets.values():
            for name, param in module.named_parameters():
                if name.endswith("weights") or "alpha" in name:  # time frequencies; snake alphas stay positive
                    param.copy_(torch.rand_like(param) + 0.5)
    saved = {}
    for name, module in nets.items():
        state = _stored(module)
        if name == "diffusion":
            state = {**{f"diffusion.net.{k}": v for k, v in state.items()}, **{f"unet.{k}": v for k, v in state.items()}}
        saved[name] = {f"module.{k}": v for k, v in state.items()}
    saved["text_aligner"] = {"module.ctc_linear.weight": torch.zeros(2, 2)}  # training-only, ignored
    saved["mpd"] = {"module.discriminators.0.conv.weight": torch.zeros(1)}
    torch.save({"net": saved, "epoch": 20, "iters": 0}, folder / "epochs_2nd_00020.pth")
    return folder
