"""The inference networks from ``model_params`` (+ PL-BERT's config), and loading the checkpoint's weights
into them with every key accounted for."""

from __future__ import annotations

from pathlib import Path

from demod_voice.errors import InputError

#: Entries a checkpoint may hold that inference does not use.
_IGNORED = ("embeddings.position_ids", "pooler.")


def networks(params: dict, plbert: dict, width: int = 1024, asr_width: int = 64) -> dict:
    """``{net name: module}`` with the checkpoint's names; ``width``/``asr_width`` are the decoder's fixed sizes."""
    from torch import nn
    from transformers import AlbertConfig, AlbertModel

    from demod_voice.engines.styletts2 import networks as n

    albert_config = AlbertConfig(**{k: v for k, v in plbert.items() if k != "dropout"})
    albert_config._attn_implementation = "eager"
    bert = AlbertModel(albert_config, add_pooling_layer=False)
    hidden, style = int(params["hidden_dim"]), int(params["style_dim"])
    layers = int(params["n_layer"])
    transformer = params["diffusion"]["transformer"]
    return {
        "bert": bert,
        "bert_encoder": nn.Linear(albert_config.hidden_size, hidden),
        "predictor": n.ProsodyPredictor(style, hidden, layers, int(params["max_dur"])),
        "decoder": n.Decoder(hidden, style, params["decoder"], width=width, asr_width=asr_width),
        "text_encoder": n.TextEncoder(hidden, 5, layers, int(params["n_token"])),
        "predictor_encoder": n.StyleEncoder(int(params["dim_in"]), style, hidden),
        "style_encoder": n.StyleEncoder(int(params["dim_in"]), style, hidden),
        "diffusion": n.StyleTransformer(2 * style, albert_config.hidden_size, 2 * style,
                                        int(transformer["num_layers"]), int(transformer["num_heads"]),
                                        int(transformer["head_features"]), int(transformer["multiplier"]),
                                        albert_config.max_position_embeddings),
    }


def diffusion_state(state: dict) -> dict:
    """The style transformer's weights: the checkpoint stores them twice (``diffusion.net.`` and ``unet.``)."""
    for prefix in ("diffusion.net.", "unet."):
        found = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if found:
            return found
    return state


def assemble(params: dict, plbert: dict, states: dict, source: Path) -> dict:
    """Build the networks at the checkpoint's sizes and load its weights (one error naming what does not fit)."""
    decoder = states["decoder"]
    try:
        width = int(decoder["encode.conv1.weight"].shape[0])
        asr_width = int(decoder["asr_res.0.weight"].shape[0])
    except KeyError as exc:
        raise InputError(f"{source}: the decoder lacks {exc.args[0]}", hint="not a StyleTTS2 HiFi-GAN decoder") from None
    nets = networks(params, plbert, width, asr_width)
    for name, module in nets.items():
        state = diffusion_state(states[name]) if name == "diffusion" else states[name]
        state = {k: v for k, v in state.items() if not k.startswith(_IGNORED)}
        expected = module.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
        if missing or unexpected or wrong:
            problems = [f"missing {', '.join(missing[:3])}" if missing else "",
                        f"unexpected {', '.join(unexpected[:3])}" if unexpected else "",
                        "shape of " + ", ".join(f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
                                                for k in wrong[:2]) if wrong else ""]
            raise InputError(f"{source}: network '{name}' does not match config.yml: "
                             + "; ".join(p for p in problems if p),
                             hint="use the config.yml (and PL-BERT config) that came with this checkpoint")
        module.load_state_dict({k: v.float() for k, v in state.items()})
    return nets
