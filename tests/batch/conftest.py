"""Fixtures for the batch tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def jobdir(tmp_path, isolated_home):
    """A folder for a job file and its outputs, with XDG dirs isolated."""
    d = tmp_path / "jobs"
    d.mkdir()
    return d
