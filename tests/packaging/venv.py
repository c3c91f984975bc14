"""What this interpreter's environment really has installed.

`importlib.metadata.distributions()` walks all of ``sys.path``. Once anything imports setuptools, its
``setuptools/_vendor`` folder (packaging, more-itertools, platformdirs... as ``.dist-info``) is on that
path too, and those vendored copies would read as installed packages at other versions. Only the
environment's own site-packages count.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import sysconfig


def normalize(name: str) -> str:
    """PEP 503 name normalisation: huggingface_hub == huggingface-hub."""
    return re.sub(r"[-_.]+", "-", name).lower()


def site_packages() -> list[str]:
    paths = sysconfig.get_paths()
    return sorted({paths["purelib"], paths["platlib"]})


def installed_distributions() -> list[md.Distribution]:
    """The distributions installed in this environment's site-packages (nothing vendored, nothing on PYTHONPATH)."""
    return [d for d in md.distributions(path=site_packages()) if d.metadata["Name"]]


def installed_versions() -> dict[str, str]:
    return {normalize(d.metadata["Name"]): d.version for d in installed_distributions()}
