"""Shared by the parity tests: stubbing exactly the imports a reference package cannot make here."""

from __future__ import annotations

import contextlib
import sys
import types

import pytest


@contextlib.contextmanager
def stubbed_modules(**modules: dict):
    """Put empty modules (with the given attributes) into ``sys.modules`` for names that cannot be imported here.

    Names already importable are left alone. The stubbed names are taken out of ``sys.modules`` afterwards, so
    no other test sees them (the reference modules imported meanwhile keep their own reference to the stub).
    """
    import importlib.util

    stubbed: dict[str, object] = {}
    for name, attributes in modules.items():
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            module = types.ModuleType(name)
            module.__dict__.update(attributes or {})
            stubbed[name] = sys.modules.get(name)
            sys.modules[name] = module
    try:
        yield
    finally:
        for name, previous in stubbed.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


@pytest.fixture(scope="session")
def parity_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("parity")
