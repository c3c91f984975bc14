"""``batch FILE --fail-fast``: many synthesis jobs from a CSV or JSONL file."""

from __future__ import annotations

from demod_voice.commands._common import not_available


def register(sub, common) -> None:
    p = sub.add_parser("batch", parents=[common], help="run synthesis jobs from a CSV/JSONL file",
                       description="Run every job in FILE (CSV: reference,text,output[,language,speaker]).")
    p.add_argument("file", metavar="FILE", help="CSV or JSONL job file")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failed job")
    p.set_defaults(func=not_available("batch"))
