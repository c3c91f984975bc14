"""The glue around piper-tts's trainer (``piper.train``, 1.8.0): its model and data module, our own fixes.

``python -m piper.train fit`` does not run as shipped; this module reuses its ``VitsModel`` and
``VitsDataModule`` and owns only what fails:

1. the wheel has no compiled ``monotonic_align``: ``monotonic_alignment_search``'s ``maximum_path_c`` (same
   signature) is registered under the module name the model imports (``patch_monotonic_align``);
2. offline, the stock ``val_mos`` checkpoint callback fetches UTMOS from a hub and crashes: we pass
   ``mos_metric="none"`` and our own callbacks (``Progress``: records, ``last.ckpt``, clean stop; a ``val_mel``
   best-checkpoint when there is a validation set);
3. the stock ONNX export fails on torch 2.9's default ``dynamo=True`` and writes no ``.onnx.json``:
   ``export`` traces with ``dynamo=False`` and writes the voice config itself;
4. ``--ckpt_path`` is a full Lightning resume and its ``warmstart_ckpt`` unpickles anything: a warm start here is a
   weights-only load (``load_checkpoint``) and a copy of the matching weights with a fresh optimizer
   (``warm_start``), and a resume never warm-starts.

Lightning counts one step per optimizer step; VITS steps two optimizers (generator, discriminator) per batch,
so "step" here (progress, ``--max-steps``) is one batch, i.e. half of Lightning's ``global_step``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from demod_voice.errors import InputError, UnsafeCheckpointError

_LOGGER = logging.getLogger(__name__)

#: Lightning ``global_step`` per training step (generator + discriminator optimizer).
OPTIMIZER_STEPS = 2
ONNX_OPSET = 15
#: Training is seeded (initial weights, batch order, segments): the same data and settings train the same way.
SEED = 1234

#: Architectures by name: ``medium`` is piper's default (the published medium voices); ``small`` is a shrunken
#: generator and discriminator for smoke runs and tests (it trains in seconds per step on a CPU, speaks noise).
ARCHITECTURES: dict[str, dict] = {
    "medium": {},
    "small": {
        "inter_channels": 16, "hidden_channels": 16, "filter_channels": 32, "n_heads": 2, "n_layers": 1,
        "n_layers_q": 1, "resblock": "2", "resblock_kernel_sizes": (3,), "resblock_dilation_sizes": ((1, 2),),
        "upsample_initial_channel": 32, "segment_size": 4096,
    },
}

#: What a refused warm-start checkpoint should be instead.
SAFE_CKPT_HINT = ("a Piper training checkpoint (.ckpt) saved by PyTorch Lightning holds tensors, numbers, strings "
                  "and containers; get one from a source you trust that loads weights-only")
#: Classes a Lightning checkpoint of a Piper voice may hold besides tensors and plain containers (its
#: hyper-parameters can keep the dataset path). Nothing that runs code on load.
_CHECKPOINT_CLASSES = ("pathlib.PosixPath", "pathlib.WindowsPath")


def patch_monotonic_align() -> None:
    """Fix 1: make ``piper.train.vits.monotonic_align`` find a compiled ``maximum_path_c``."""
    name = "piper.train.vits.monotonic_align.monotonic_align"
    if name + ".core" in sys.modules:
        return
    import monotonic_alignment_search.core as core

    package = types.ModuleType(name)
    package.__path__ = []  # a package, so ``.core`` resolves
    package.core = core
    sys.modules[name] = package
    sys.modules[name + ".core"] = core


class SmallDiscriminator(nn.Module):
    """A few-thousand-parameter stand-in for HiFi-GAN's multi-period discriminator (``small`` architecture).

    The real one has ~47 M parameters and costs most of a CPU training step; this keeps the same interface
    (``forward(y, y_hat) -> real scores, fake scores, real feature maps, fake feature maps``).
    """

    PERIODS = (1, 2, 3)

    def __init__(self, channels: int = 8):
        super().__init__()
        self.stacks = nn.ModuleList(
            nn.ModuleList([nn.Conv2d(1, channels, (5, 1), (3, 1), padding=(2, 0)),
                           nn.Conv2d(channels, channels, (5, 1), (3, 1), padding=(2, 0)),
                           nn.Conv2d(channels, 1, (3, 1), 1, padding=(1, 0))])
            for _ in self.PERIODS)

    @staticmethod
    def _fold(y: torch.Tensor, period: int) -> torch.Tensor:
        batch, chans, length = y.shape
        if length % period:
            y = nn.functional.pad(y, (0, period - length % period), "reflect")
        return y.view(batch, chans, -1, period)

    def _score(self, stack, y, period):
        x, fmap = self._fold(y, period), []
        for i, conv in enumerate(stack):
            x = conv(x)
            if i < len(stack) - 1:
                x = nn.functional.leaky_relu(x, 0.1)
            fmap.append(x)
        return torch.flatten(x, 1, -1), fmap

    def forward(self, y, y_hat):
        real, fake, fmap_real, fmap_fake = [], [], [], []
        for stack, period in zip(self.stacks, self.PERIODS):
            score, fmap = self._score(stack, y, period)
            real.append(score)
            fmap_real.append(fmap)
            score, fmap = self._score(stack, y_hat, period)
            fake.append(score)
            fmap_fake.append(fmap)
        return real, fake, fmap_real, fmap_fake


def model_settings(arch: str, batch_size: int, sample_rate: int, num_symbols: int, num_speakers: int) -> dict:
    """``VitsModel`` keyword arguments (what ``python -m piper.train`` links from ``--data.*``)."""
    if arch not in ARCHITECTURES:
        raise InputError(f"unknown architecture '{arch}'", hint="use " + ", ".join(ARCHITECTURES))
    settings = {"batch_size": batch_size, "sample_rate": sample_rate, "num_symbols": num_symbols,
                "num_speakers": num_speakers, "use_sdp": arch != "small", "mos_metric": "none",
                **ARCHITECTURES[arch]}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}


def build_model(settings: dict, arch: str):
    """A fresh ``VitsModel`` (fix 2: no MOS predictor), with the small discriminator for ``small``."""
    patch_monotonic_align()
    from piper.train.vits.lightning import VitsModel

    kwargs = {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
              for k, v in settings.items()}
    model = VitsModel(**kwargs)
    if arch == "small":
        model.model_d = SmallDiscriminator()
    return model


def build_data(dataset: Path, work: Path, settings: dict, language: str, voice: str, validation: bool):
    """piper's ``VitsDataModule`` over a ``piper-preprocess`` dataset (its audio is already trimmed)."""
    from piper.train.vits.dataset import VitsDataModule

    id_map = dataset / "phoneme_id_map.json"
    return VitsDataModule(
        csv_path=dataset / "metadata.csv", audio_dir=dataset / "wavs", cache_dir=work / "cache",
        config_path=work / "config.json", espeak_voice=language, voice_name=voice,
        sample_rate=settings["sample_rate"], num_symbols=settings["num_symbols"],
        num_speakers=settings["num_speakers"], batch_size=settings["batch_size"],
        segment_size=settings.get("segment_size", 8192), num_workers=0, trim_silence=False,
        validation_split=0.05 if validation else 0.0, num_test_examples=0,
        phonemes_path=id_map if id_map.is_file() else None)


# --- checkpoints (fix 4) ------------------------------------------------------------------------------------

def load_checkpoint(path: Path, what: str = "Piper checkpoint") -> dict:
    """A Lightning checkpoint read weights-only; one that needs arbitrary unpickling is refused."""
    import pickle
    import warnings

    from demod_voice.engines.rvc.checkpoint import unsafe_message

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found: {path}", hint="check the path")
    allowed = [_import_class(name) for name in _CHECKPOINT_CLASSES]
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals([c for c in allowed if c]):
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        _LOGGER.debug("torch.load refused %s: %s", path, text)
        raise UnsafeCheckpointError(unsafe_message(what, path, text), hint=SAFE_CKPT_HINT) from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, AttributeError, TypeError) as exc:
        raise InputError(f"cannot read {what} {path}: {type(exc).__name__}: {str(exc).strip()[:200]}",
                         hint="the file may be truncated or not a PyTorch checkpoint") from None
    if not isinstance(data, dict) or not isinstance(data.get("state_dict"), dict):
        raise InputError(f"{what} {path} has no state_dict", hint="pass a Piper .ckpt saved by PyTorch Lightning")
    return data


def _import_class(dotted: str):
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(__import__(module, fromlist=[name]), name)
    except (ImportError, AttributeError):
        return None


def warm_start(model, path: Path) -> tuple[int, int]:
    """Copy every weight of ``path`` whose name and shape match ``model`` (fresh optimizer); (copied, skipped)."""
    state = load_checkpoint(path, "warm-start checkpoint")["state_dict"]
    own = model.state_dict()
    copied = {k: v for k, v in state.items() if k in own and torch.is_tensor(v) and own[k].shape == v.shape}
    own.update(copied)
    model.load_state_dict(own, strict=False)
    return len(copied), len(state) - len(copied)


def checkpoint_step(path: Path) -> int:
    """The training step (batches) a checkpoint was saved at."""
    return int(load_checkpoint(path, "checkpoint").get("global_step", 0)) // OPTIMIZER_STEPS


# --- training ------------------------------------------------------------------------------------------------

def _progress_callback(record: Callable[[dict], None], checkpoint: Path, every: int, stop,
                       max_steps: int | None, first_step: int):
    from lightning.pytorch.callbacks import Callback

    class Progress(Callback):
        """Progress records after each step, ``last.ckpt`` every ``every`` steps and on a stop request."""

        def __init__(self):
            self.started = time.monotonic()
            self.losses: list[dict] = []
            self.skipped = 0

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            # A fresh model can produce inf/NaN losses in its first steps (upstream #140); one such update
            # would turn every weight into NaN. Skip it: the gradients of that optimizer are zeroed.
            grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            if grads and not all(bool(torch.isfinite(g).all()) for g in grads):
                for g in grads:
                    g.zero_()
                self.skipped += 1

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            step = trainer.global_step // OPTIMIZER_STEPS
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k in ("loss_g", "loss_d",
                                                                                          "train_mel")}
            done = step - first_step
            per_step = (time.monotonic() - self.started) / max(done, 1)
            total = max_steps
            if total is None and trainer.max_epochs and trainer.max_epochs > 0 and trainer.num_training_batches:
                total = trainer.max_epochs * int(trainer.num_training_batches)
            eta = round(per_step * max(total - step, 0), 1) if total else None
            loss = metrics.get("loss_g")
            entry = {"step": step, "epoch": trainer.current_epoch, "loss": _finite(loss),
                     "loss_d": _finite(metrics.get("loss_d")), "mel": _finite(metrics.get("train_mel")),
                     "eta_s": eta, "total_steps": total, "s_per_step": round(per_step, 3),
                     "skipped_updates": self.skipped}
            self.losses.append({"step": step, "loss": entry["loss"], "loss_d": entry["loss_d"]})
            record(entry)
            if stop.requested or step % every == 0:
                save(trainer, checkpoint)
            if stop.requested:
                trainer.should_stop = True

    return Progress()


def _finite(value):
    return round(value, 5) if value is not None and math.isfinite(value) else None


def save(trainer, path: Path) -> None:
    """``trainer.save_checkpoint`` made atomic (a stop mid-write never leaves a broken ``last.ckpt``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part")
    trainer.save_checkpoint(part)
    os.replace(part, path)


def train(*, dataset: Path, work: Path, voice: str, language: str, arch: str, batch_size: int,
          max_steps: int | None, max_epochs: int | None, accelerator: str, checkpoint_every: int,
          warmstart: Path | None, resume: bool, record: Callable[[dict], None], stop) -> dict:
    """Train (or resume) in ``work`` (``checkpoints/last.ckpt``, ``config.json``, ``cache/``); a summary.

    ``stop.requested`` (``jobs.Stop``) ends the run after the current step, with ``last.ckpt`` saved."""
    import lightning as L

    rows = sum(1 for line in (dataset / "metadata.csv").read_text(encoding="utf-8").splitlines() if line.strip())
    id_map = json.loads((dataset / "phoneme_id_map.json").read_text(encoding="utf-8")) \
        if (dataset / "phoneme_id_map.json").is_file() else None
    num_symbols = max(256, 1 + max((i for ids in id_map.values() for i in ids), default=0)) if id_map else 256
    report = dataset / "report.json"
    sample_rate = json.loads(report.read_text(encoding="utf-8")).get("sample_rate", 22050) \
        if report.is_file() else 22050
    settings = model_settings(arch, min(batch_size, rows), sample_rate, num_symbols, 1)
    validation = int(rows * 0.05) >= 1
    checkpoints = work / "checkpoints"
    last = checkpoints / "last.ckpt"
    first_step = 0
    if resume:
        if not last.is_file():
            raise InputError(f"nothing to resume: {last} does not exist", hint="train without --resume first")
        first_step = checkpoint_step(last)
        record({"event": "resume", "step": first_step})
    model = build_model(settings, arch)
    if warmstart and not resume:
        copied, skipped = warm_start(model, warmstart)
        record({"event": "warmstart", "copied": copied, "skipped": skipped})
    data = build_data(dataset, work, settings, language, voice, validation)
    progress = _progress_callback(record, last, checkpoint_every, stop, max_steps, first_step)
    callbacks = [progress]
    if validation:
        from lightning.pytorch.callbacks import ModelCheckpoint

        callbacks.append(ModelCheckpoint(dirpath=checkpoints, monitor="val_mel", mode="min", save_top_k=3,
                                         filename="epoch={epoch}-val_mel={val_mel:.4f}",
                                         auto_insert_metric_name=False))
    trainer = L.Trainer(
        max_steps=max_steps * OPTIMIZER_STEPS if max_steps else -1,
        max_epochs=max_epochs if max_epochs else (-1 if max_steps else 1000),
        accelerator={"gpu": "gpu", "cpu": "cpu"}.get(accelerator, "auto"), devices=1,
        logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=validation,
        callbacks=callbacks, num_sanity_val_steps=0, limit_val_batches=None if validation else 0,
        default_root_dir=work)
    L.seed_everything(SEED, verbose=False)
    started = time.monotonic()
    trainer.fit(model, datamodule=data, ckpt_path=last if resume else None, weights_only=True)
    save(trainer, last)
    step = trainer.global_step // OPTIMIZER_STEPS
    return {"steps": step, "first_step": first_step, "epochs": trainer.current_epoch,
            "seconds": round(time.monotonic() - started, 1), "losses": progress.losses[-100:],
            "stopped": stop.requested, "skipped_updates": progress.skipped, "model": settings, "arch": arch,
            "device": str(trainer.strategy.root_device)}


# --- export (fix 3) -------------------------------------------------------------------------------------------

def export(checkpoint: Path, onnx_path: Path, *, arch: str, data_config: Path, voice: str, language: str) -> Path:
    """``checkpoint`` -> ``onnx_path`` (traced, ``dynamo=False``) + ``onnx_path.json`` (the voice config)."""
    from demod_voice.paths import atomic_write_text

    ckpt = load_checkpoint(checkpoint, "checkpoint")
    settings = dict(ckpt.get("hyper_parameters") or {})
    settings.update(mos_metric="none", warmstart_ckpt=None, vocoder_warmstart_ckpt=None)
    model = build_model(settings, arch)
    generator = model.model_g
    prefix = "model_g."
    generator.load_state_dict({k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)})
    if not all(bool(torch.isfinite(p).all()) for p in generator.parameters()):
        from demod_voice.errors import EngineError

        raise EngineError(f"the model in {checkpoint} has non-finite weights (training diverged)",
                          hint="train again from an earlier checkpoint, or warm-start from a published voice")
    generator.eval()
    with torch.no_grad():
        generator.dec.remove_weight_norm()

    def infer(text, text_lengths, scales, sid=None):
        return generator.infer(text, text_lengths, noise_scale=scales[0], length_scale=scales[1],
                               noise_scale_w=scales[2], sid=sid)[0].unsqueeze(1)

    generator.forward = infer
    tokens = torch.randint(low=0, high=generator.n_vocab, size=(1, 50), dtype=torch.long)
    sid = torch.LongTensor([0]) if generator.n_speakers > 1 else None
    inputs = (tokens, torch.LongTensor([tokens.size(1)]), torch.FloatTensor([0.667, 1.0, 0.8]), sid)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    part = onnx_path.with_name(f".{onnx_path.name}.part")
    torch.onnx.export(model=generator, args=inputs, f=str(part), opset_version=ONNX_OPSET, dynamo=False,
                      input_names=["input", "input_lengths", "scales", "sid"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch_size", 1: "phonemes"}, "input_lengths": {0: "batch_size"},
                                    "output": {0: "batch_size", 2: "time"}})
    config = json.loads(Path(data_config).read_text(encoding="utf-8"))
    region = language.split("-")
    config.update(dataset=voice, language={"code": "_".join([region[0].lower()] + [r.upper() for r in region[1:]])})
    config.setdefault("audio", {})["quality"] = "x_low" if arch == "small" else "medium"
    atomic_write_text(onnx_path.with_name(onnx_path.name + ".json"), json.dumps(config, ensure_ascii=False, indent=2))
    os.replace(part, onnx_path)
    return onnx_path
