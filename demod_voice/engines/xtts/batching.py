"""Batched XTTS GPT decoding: concurrent requests share each decoding step.

XTTS spends most of its time in the GPT's token-by-token loop, and one step
reads every weight once whatever the number of rows, so a step for four
requests costs little more than a step for one. One ``BatchScheduler`` per
loaded model runs that loop on its own thread: requests that arrive within
``xtts.batch_window_ms`` start together, later ones join at the next step
boundary, finished rows leave, and at most ``xtts.max_batch`` rows decode at
once. Each row keeps its own KV cache, position, sampling settings,
``torch.Generator`` and stop condition; the vocoder runs per request in the
caller's thread, so streaming still yields each request's chunks as its own
tokens arrive.

Same audio alone or in a batch (bit for bit), by construction:
- No padding inside a sequence. A newcomer's prompt is prefilled on its own
  (batch of one, its true length), and at every step attention runs per row
  over that row's own cache, so sequence lengths never mix.
- The dense layers (QKV, projections, MLP, heads) run on all rows at once,
  and there a BLAS picks its kernel by the number of rows: on this CPU (MKL)
  rows computed in a batch of 1-3 differ in the last bit from rows computed
  in a batch of 4, 8 or 12, while every multiple of 4 gives each row the same
  bits whatever its neighbours and position. So the rows are padded with
  zeros up to a multiple of ``row_quantum`` (4 on CPU); a request alone runs
  the same 4-row kernel. On CUDA, cuBLAS heuristics depend on the shape, so
  the rows are padded to ``max_batch`` (one fixed shape per model).
- On the CPU the dense weights are stored [out, in] and multiplied as
  ``W @ x.T`` (``_CpuDense``): with few rows MKL's kernel for that form is
  about 2x faster than GPT-2's ``x @ W`` (a 4-row step 0.56 -> 0.3 s on the
  full-size model, docs/benchmarks.md). That kernel gives a row the same
  bits for 4 to 11 rows, not beyond, so steps multiply at most 8 rows at a
  time (the rows are padded to 4 or 8 per block).
- Sampling runs per row, in float32, with the row's own generator.

A voice's conditioning prefix (its conditioning latents and the start-text
token: 33 of a typical prompt's ~68 positions) is the same for every request
with that voice, and causal attention makes its keys and values independent of
the text after it. So the prefill runs in two stages, always: the prefix on its
own, then the rest of the prompt attending to the prefix's keys and values.
``PrefixCache`` keeps the first stage's keys and values per (model, voice
latents, device, dtype), bounded by ``xtts.prefix_cache_entries``; a request
whose prefix is cached skips that stage. Because the no-cache path runs the
same two stages, a request gives the same bits with and without the cache
(tested); against coqui's one-pass prefill the hidden states differ only in
float rounding (measured in tests/xtts/test_batching.py) and greedy decoding
picks coqui's tokens.

The maths follows coqui-tts 0.28's ``GPT.compute_embeddings`` +
``GPT2InferenceModel`` + transformers' sampling (repetition penalty over the
whole prompt, then temperature, top-k, top-p), so greedy decoding picks the
tokens coqui's own ``generate`` picks; ``tests/xtts/test_batching.py`` checks
that against coqui on the tiny checkpoint.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

_LOGGER = logging.getLogger(__name__)

#: Rows are padded to a multiple of this on the CPU (see the module docstring).
CPU_ROW_QUANTUM = 4
#: On the CPU a step multiplies at most this many rows at once (see the module docstring).
CPU_ROW_BLOCK = 8
DEFAULT_MAX_BATCH = {"cpu": 4, "cuda": 8}
DEFAULT_WINDOW_MS = 20.0


@dataclass(frozen=True)
class Sampling:
    """Per-request sampling settings (coqui's defaults)."""

    temperature: float = 0.75
    top_k: int = 50
    top_p: float = 0.85
    repetition_penalty: float = 10.0


class DecodeJob:
    """One sentence of one request: its prompt, settings and the stream of (token, latent) it gets back."""

    def __init__(self, prompt, sampling: Sampling, generator, max_tokens: int, prefix_len: int = 0,
                 prefix_key: tuple | None = None):
        self.prompt = prompt
        """torch.Tensor [P, D]: conditioning latents, text and the start-audio token, embedded."""
        self.prefix_len = prefix_len
        """Rows of ``prompt`` prefilled as their own stage (the voice's prefix); 0: one stage."""
        self.prefix_key = prefix_key
        """Identity of that prefix for ``PrefixCache`` (None: not cached)."""
        self.sampling = sampling
        self.generator = generator
        self.max_tokens = max_tokens
        self.submitted = time.perf_counter()
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """The caller went away: the row leaves the batch at the next step boundary."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def put(self, event: tuple) -> None:
        self._events.put(event)

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        """Yield (token, latent [D]) per decoded step until the row stops; re-raise a decoding error."""
        try:
            while True:
                kind, token, latent = self._events.get()
                if kind == "step":
                    yield token, latent
                elif kind == "done":
                    return
                else:
                    raise latent
        finally:
            self.cancel()


class _Row:
    """A job in the batch: its KV cache ([H, capacity, head_dim] per layer), length and seen tokens."""

    def __init__(self, job: DecodeJob, caches: list, length: int, seen: set[int]):
        self.job = job
        self.caches = caches
        self.length = length
        self.seen = seen
        self.generated = 0
        self.last_token = -1


class _ModuleDense:
    """A GPT-2 ``Conv1D`` used as it is (CUDA: rows are padded to one fixed shape anyway)."""

    def __init__(self, conv):
        self.conv = conv

    def __call__(self, x, blocked: bool = False):
        return self.conv(x)


class _CpuDense:
    """A GPT-2 ``Conv1D`` (``x @ W + b``, W [in, out]) computed as ``(W.T @ x.T).T`` with W.T stored contiguous.

    The module keeps a transposed view of the new storage as its weight, so the model holds one copy
    and coqui's own code still sees the same maths. ``blocked`` (decoding steps) multiplies at most
    ``CPU_ROW_BLOCK`` rows at once, so every row goes through the same MKL kernel (module docstring).
    """

    def __init__(self, conv):
        import torch

        self.torch = torch
        self.weight = conv.weight.detach().t().contiguous()  # [out, in]
        self.bias = conv.bias.detach()[:, None]
        conv.weight = torch.nn.Parameter(self.weight.t(), requires_grad=False)

    def _mm(self, x):
        return self.torch.addmm(self.bias, self.weight, x.t()).t()

    def __call__(self, x, blocked: bool = False):
        if not blocked or x.shape[0] <= CPU_ROW_BLOCK:
            return self._mm(x).contiguous()
        return self.torch.cat([self._mm(part) for part in x.split(CPU_ROW_BLOCK)])


class _Layer:
    """One GPT-2 block's pieces, its dense layers wrapped by ``dense``."""

    def __init__(self, block, dense):
        self.ln_1, self.ln_2 = block.ln_1, block.ln_2
        self.qkv = dense(block.attn.c_attn)
        self.proj = dense(block.attn.c_proj)
        self.fc = dense(block.mlp.c_fc)
        self.fc_proj = dense(block.mlp.c_proj)
        self.act = block.mlp.act

    def mlp(self, x, blocked: bool = False):
        return self.fc_proj(self.act(self.fc(x, blocked)), blocked)


class PrefixCache:
    """The keys and values of voices' conditioning prefixes, least recently used first out.

    Keyed by (model, digest of the voice's latents, device, dtype): latents that change get a new
    digest, so an entry never serves other latents; stale entries leave in LRU order. Used only from
    the decoding loop's thread (under the device lock).
    """

    def __init__(self, entries: int):
        self.entries = max(0, int(entries))
        self._items: collections.OrderedDict = collections.OrderedDict()

    def get(self, key):
        self._trim()
        if key is None or key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key, value) -> None:
        if key is None or not self.entries:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        self._trim()

    def resize(self, entries: int) -> None:
        """New bound (from any thread): the loop's thread trims at its next lookup."""
        self.entries = max(0, int(entries))

    def _trim(self) -> None:
        while len(self._items) > self.entries:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def latents_digest(tensor) -> str:
    """Content digest of a latents tensor (float32 bytes and shape): the voice's identity for the cache."""
    import hashlib

    data = tensor.detach().float().cpu().contiguous()
    return hashlib.sha256(repr(tuple(data.shape)).encode() + data.numpy().tobytes()).hexdigest()


class GptDecoder:
    """The maths of one XTTS GPT: prompt embedding, solo prefill, batched step, head and sampling."""

    def __init__(self, gpt, row_quantum: int, prefix_entries: int = 0):
        import torch

        self.torch = torch
        self.prefixes = PrefixCache(prefix_entries)
        self.stats = collections.Counter()
        self.gpt = gpt
        self.blocks = list(gpt.gpt.h)
        self.ln_f = gpt.gpt.ln_f
        self.heads = int(gpt.heads)
        self.width = int(gpt.model_dim)
        self.head_dim = self.width // self.heads
        self.row_quantum = max(1, int(row_quantum))
        self.start_token = int(gpt.start_audio_token)
        self.stop_token = int(gpt.stop_audio_token)
        self.max_tokens = int(gpt.max_gen_mel_tokens)
        on_cpu = self.ln_f.weight.device.type == "cpu"
        self.layers = [_Layer(block, _CpuDense if on_cpu else _ModuleDense) for block in self.blocks]

    # -- prompt ------------------------------------------------------------------------
    def prompt(self, cond_latent, text_tokens):
        """[P, D]: like coqui's compute_embeddings plus the start-audio token at mel position 0."""
        torch = self.torch
        gpt = self.gpt
        text = torch.nn.functional.pad(text_tokens, (0, 1), value=gpt.stop_text_token)
        text = torch.nn.functional.pad(text, (1, 0), value=gpt.start_text_token)
        text_emb = gpt.text_embedding(text) + gpt.text_pos_embedding(text)
        start = torch.full((1, 1), self.start_token, dtype=torch.long, device=text.device)
        start_emb = gpt.mel_embedding(start)
        start_emb = start_emb + gpt.mel_pos_embedding(start_emb)
        return torch.cat([cond_latent.to(text_emb.dtype), text_emb, start_emb], dim=1)[0]

    def prefix_len(self, cond_latent) -> int:
        """Prompt rows that depend on the voice only: the conditioning latents and the start-text token."""
        return int(cond_latent.shape[-2]) + 1

    def prompt_ids(self, prompt_len: int) -> set[int]:
        """Token ids transformers' repetition penalty sees in the prompt: placeholder 1s and the start token."""
        return {1, self.start_token} if prompt_len > 1 else {self.start_token}

    # -- forward passes -------------------------------------------------------------------
    def _split_heads(self, x):  # [N, D] -> [H, N, hd]
        return x.view(x.shape[0], self.heads, self.head_dim).transpose(0, 1)

    def prefill(self, job: DecodeJob) -> tuple[_Row, Any]:
        """Run a prompt alone (its true length, causal attention); return its row and last hidden state [1, D].

        With ``job.prefix_len`` the first rows run as their own stage, or come from ``self.prefixes``.
        """
        torch = self.torch
        x = job.prompt
        length = x.shape[0]
        capacity = length + job.max_tokens + 1
        p = job.prefix_len if 0 < job.prefix_len < length else 0
        prefix = None
        if p:
            prefix = self.prefixes.get(job.prefix_key)
            if prefix is None:
                prefix = [(k.contiguous(), v.contiguous()) for k, v in self._stage(x[:p], None)[1]]
                self.prefixes.put(job.prefix_key, prefix)
                self.stats["prefix_computed"] += 1
            else:
                self.stats["prefix_cached"] += 1
            x = x[p:]
        x, kv = self._stage(x, prefix)
        caches = []
        for k, v in kv:
            k_cache = torch.empty((self.heads, capacity, self.head_dim), dtype=k.dtype, device=k.device)
            v_cache = torch.empty_like(k_cache)
            k_cache[:, :length] = k
            v_cache[:, :length] = v
            caches.append((k_cache, v_cache))
        row = _Row(job, caches, length, self.prompt_ids(length))
        return row, self.ln_f(x[-1:])

    def _stage(self, x, prefix):
        """Prefill rows ``x`` [n, D] after ``prefix`` (per layer (K, V) [H, p, hd], or None).

        Returns the last layer's output and per layer the (K, V) of the prefix and these rows together.
        Without a prefix this is plain causal attention; with one, row i sees the prefix and rows <= i.
        """
        torch = self.torch
        sdpa = torch.nn.functional.scaled_dot_product_attention
        n = x.shape[0]
        mask = None
        if prefix is not None:
            p = prefix[0][0].shape[1]
            mask = torch.ones((n, p + n), dtype=torch.bool, device=x.device).tril(diagonal=p)
        kv = []
        for index, layer in enumerate(self.layers):
            qkv = layer.qkv(layer.ln_1(x))
            q, k, v = (self._split_heads(t) for t in qkv.split(self.width, dim=1))
            if prefix is not None:
                k = torch.cat([prefix[index][0], k], dim=1)
                v = torch.cat([prefix[index][1], v], dim=1)
                attn = sdpa(q[None], k[None], v[None], attn_mask=mask)[0]
            else:
                attn = sdpa(q[None], k[None], v[None], is_causal=True)[0]
            kv.append((k, v))
            x = layer.proj(attn.transpose(0, 1).reshape(n, self.width)) + x
            x = x + layer.mlp(layer.ln_2(x))
        return x, kv

    def padded_rows(self, count: int, fixed: int | None = None) -> int:
        if fixed:
            return max(fixed, count)
        quantum = self.row_quantum
        return -(-count // quantum) * quantum

    def step(self, rows: list[_Row], padded: int):
        """One decoding step for all rows: the dense layers batched over ``padded`` rows, attention per row."""
        torch = self.torch
        sdpa = torch.nn.functional.scaled_dot_product_attention
        gpt = self.gpt
        n = len(rows)
        device = rows[0].caches[0][0].device
        tokens = torch.tensor([r.last_token for r in rows], dtype=torch.long, device=device)
        positions = torch.tensor([r.generated for r in rows], dtype=torch.long, device=device)
        emb = gpt.mel_embedding(tokens) + gpt.mel_pos_embedding.emb(positions)
        x = torch.zeros((padded, self.width), dtype=emb.dtype, device=device)
        x[:n] = emb
        for index, layer in enumerate(self.layers):
            qkv = layer.qkv(layer.ln_1(x), blocked=True)
            q, k, v = qkv.split(self.width, dim=1)
            attn = torch.zeros((padded, self.width), dtype=q.dtype, device=device)
            for i, row in enumerate(rows):
                k_cache, v_cache = row.caches[index]
                at = row.length
                k_cache[:, at] = k[i].view(self.heads, self.head_dim)
                v_cache[:, at] = v[i].view(self.heads, self.head_dim)
                out = sdpa(q[i].view(1, self.heads, 1, self.head_dim), k_cache[None, :, : at + 1],
                           v_cache[None, :, : at + 1])
                attn[i] = out.reshape(self.width)
            x = layer.proj(attn, blocked=True) + x
            x = x + layer.mlp(layer.ln_2(x), blocked=True)
        for row in rows:
            row.length += 1
        return self.ln_f(x)

    def head(self, hidden):
        """(latents, logits) of ln_f outputs: coqui's final_norm, then the mel head."""
        latent = self.gpt.final_norm(hidden)
        return latent, self.gpt.mel_head(latent)

    def sample(self, row: _Row, logits) -> int:
        """transformers' sampling order for one row: repetition penalty, temperature, top-k, top-p."""
        torch = self.torch
        s = row.job.sampling
        scores = logits.float()[None]
        if s.repetition_penalty != 1.0:
            ids = torch.tensor(sorted(row.seen), dtype=torch.long, device=scores.device)[None]
            seen = scores.gather(1, ids)
            seen = torch.where(seen < 0, seen * s.repetition_penalty, seen / s.repetition_penalty)
            scores = scores.scatter(1, ids, seen)
        if s.temperature != 1.0:
            scores = scores / s.temperature
        if s.top_k:
            k = min(int(s.top_k), scores.shape[-1])
            threshold = torch.topk(scores, k)[0][..., -1, None]
            scores = scores.masked_fill(scores < threshold, -float("inf"))
        if s.top_p < 1.0:
            ordered, order = torch.sort(scores, descending=False)
            drop = ordered.softmax(dim=-1).cumsum(dim=-1) <= (1 - s.top_p)
            drop[..., -1:] = False
            scores = scores.masked_fill(drop.scatter(1, order, drop), -float("inf"))
        probs = torch.nn.functional.softmax(scores, dim=-1)
        return int(torch.multinomial(probs, num_samples=1, generator=row.job.generator).item())


class BatchScheduler:
    """One decoding loop per loaded model; requests submit jobs and read their own stream of tokens."""

    def __init__(self, decoder: GptDecoder, lock: threading.Lock, context: Callable[[], Any],
                 max_batch: int, window_ms: float, fixed_rows: bool = False):
        self.decoder = decoder
        self.lock = lock
        self.context = context
        self.max_batch = max(1, int(max_batch))
        self.window_s = max(0.0, float(window_ms)) / 1000.0
        self.fixed_rows = fixed_rows
        self.stats = collections.Counter()
        self._pending: collections.deque[DecodeJob] = collections.deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def close(self) -> None:
        """End the loop once it is idle (the model is being unloaded); a later ``submit`` starts it again."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()

    def configure(self, max_batch: int | None = None, window_ms: float | None = None) -> None:
        """Change the limits; the loop reads them at every step boundary."""
        if max_batch is not None:
            self.max_batch = max(1, int(max_batch))
        if window_ms is not None:
            self.window_s = max(0.0, float(window_ms)) / 1000.0

    def submit(self, job: DecodeJob) -> DecodeJob:
        with self._wake:
            self._pending.append(job)
            self._closed = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="xtts-batch", daemon=True)
                self._thread.start()
            self._wake.notify()
        return job

    # -- the loop -----------------------------------------------------------------------
    def _take(self, busy: int) -> list[DecodeJob] | None:
        """Pending jobs that fit beside ``busy`` rows; when idle, block for the first and gather more within the window.

        The room is read after waiting, so a ``configure`` made meanwhile counts.
        """
        with self._wake:
            if not busy:
                while not self._pending:
                    if self._closed:
                        self._thread = None  # under the lock: a submit from now on starts a new loop
                        return None
                    self._wake.wait()
                deadline = time.monotonic() + self.window_s
                while len(self._pending) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                    self._wake.wait(left)
            room = self.max_batch - busy
            taken = []
            while self._pending and len(taken) < room:
                job = self._pending.popleft()
                if not job.cancelled:
                    taken.append(job)
            return taken

    def _loop(self) -> None:
        torch = self.decoder.torch
        rows: list[_Row] = []
        while True:
            rows = [r for r in rows if not r.job.cancelled]
            newcomers = self._take(len(rows))
            if newcomers is None:  # closed while idle
                return
            for job in newcomers:
                try:
                    with self.lock, self.context(), torch.inference_mode():
                        row, hidden = self.decoder.prefill(job)
                        latent, logits = self.decoder.head(hidden)
                        self._emit(row, latent[0], logits[0])
                except (RuntimeError, ValueError, IndexError) as exc:
                    job.put(("error", None, exc))
                    continue
                if not self._finished(row):
                    rows.append(row)
            if not rows:
                continue
            padded = self.decoder.padded_rows(len(rows), self.max_batch if self.fixed_rows else None)
            try:
                with self.lock, self.context(), torch.inference_mode():
                    hidden = self.decoder.step(rows, padded)
                    latents, logits = self.decoder.head(hidden)
                    for i, row in enumerate(rows):
                        self._emit(row, latents[i], logits[i])
            except (RuntimeError, ValueError, IndexError) as exc:
                for row in rows:
                    row.job.put(("error", None, exc))
                rows = []
                continue
            self.stats["steps"] += 1
            self.stats["rows"] += len(rows)
            self.stats["max_rows"] = max(self.stats["max_rows"], len(rows))
            rows = [r for r in rows if not self._finished(r)]

    def _emit(self, row: _Row, latent, logits) -> None:
        token = self.decoder.sample(row, logits)
        row.last_token = token
        row.generated += 1
        row.seen.add(token)
        row.job.put(("step", token, latent.detach().clone()))

    def _finished(self, row: _Row) -> bool:
        if row.last_token == self.decoder.stop_token or row.generated >= row.job.max_tokens or row.job.cancelled:
            row.job.put(("done", None, None))
            return True
        return False


def row_quantum(device: str, max_batch: int) -> tuple[int, bool]:
    """(quantum, fixed): CPU rows pad to a multiple of 4; CUDA rows pad to max_batch (one fixed shape)."""
    if device.startswith("cuda"):
        return max_batch, True
    return CPU_ROW_QUANTUM, False


def default_max_batch(device: str) -> int:
    return DEFAULT_MAX_BATCH["cuda" if device.startswith("cuda") else "cpu"]
