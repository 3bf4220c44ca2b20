"""pyproject.toml installs without setuptools' deprecation warnings."""

from __future__ import annotations

import tomllib
from pathlib import Path

from django.conf import settings

PYPROJECT = tomllib.loads((Path(settings.BASE_DIR) / "pyproject.toml").read_text())


def test_the_license_is_an_spdx_expression_for_a_setuptools_that_reads_it():
    # A table (`license = {text = ...}`) made every install print setuptools'
    # "`project.license` as a TOML table is deprecated" warning, three times.
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert "setuptools>=77" in PYPROJECT["build-system"]["requires"]  # the first to read it
    assert not any(c.startswith("License ::") for c in PYPROJECT["project"].get("classifiers", []))
