"""Progress for a log: one plain line every few seconds while long work runs (stderr is not a terminal).

``Records`` has the part of tqdm's interface the commands use (``update``, ``set_postfix_str``,
``set_description``, ``write``, ``close``, ``n``, ``total``), so ``progress.bar`` can hand out either. A
timer thread writes the line, so a record appears on time even while one long step (a 300-word sentence, a
model load) gives no update; work that ends before the first interval writes nothing.
"""

from __future__ import annotations

import sys
import threading
import time


def human_size(size: float) -> str:
    """Bytes as a person reads them: ``512 B``, ``3.1 MiB``, ``1.7 GiB``."""
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


class Records:
    def __init__(self, total: int | None, *, desc: str, unit: str, every: float = 10.0, stream=None):
        self.total, self.n, self.desc, self.unit = total, 0, desc, unit
        self.postfix = ""
        self.disable = False
        """tqdm's flag, read by callers that print beside a bar (``models pull``): records are never disabled."""
        self.every = every
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"progress-{desc}", daemon=True)
        self._thread.start()

    # --- tqdm's interface ---
    def update(self, n: int = 1) -> None:
        with self._lock:
            self.n += n

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        self.postfix = text

    def set_description(self, desc: str = "", refresh: bool = True) -> None:
        self.desc = desc

    def write(self, text: str, file=None, **_: object) -> None:
        print(text, file=file or self.stream, flush=True)

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        self._stop.set()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the records ---
    def line(self) -> str:
        """``desc: 12/40 sentence (30 %), 25 s, about 58 s left``; bytes as sizes (``3.1 MiB/7.0 MiB (44 %)``)."""
        elapsed = time.monotonic() - self.started
        with self._lock:
            done, total = self.n, self.total
        if self.unit == "B":  # downloads: sizes a person reads (12.0 MiB/1.7 GiB)
            parts = [f"{human_size(done)}/{human_size(total)}" if total else human_size(done)]
        else:
            parts = [f"{done}/{total} {self.unit}" if total else f"{done} {self.unit}"]
        if total:
            parts[0] += f" ({100 * done / total:.0f} %)"
        parts.append(f"{elapsed:.0f} s")
        if total and 0 < done < total:
            parts.append(f"about {elapsed / done * (total - done):.0f} s left")
        return f"{self.desc}: " + ", ".join(parts) + (f" [{self.postfix}]" if self.postfix else "")

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                print(self.line(), file=self.stream, flush=True)
            except (OSError, ValueError):  # stderr closed under us: stop recording
                return
