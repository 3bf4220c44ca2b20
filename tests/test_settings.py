"""Production mode is configured by environment variables alone and passes Django's deploy checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "ALLOWED_HOSTS": "rate.example.com",
    "DJANGO_SETTINGS_MODULE": "raterhub.settings",
}


# The tests that call it are marked slow: each starts a Python process.
def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE for Playwright; a deployment would not.
    dropped = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_check_deploy_is_clean_in_production_mode():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.slow
def test_production_mode_refuses_to_start_without_a_secret_key():
    env = {**PRODUCTION_ENV, "SECRET_KEY": ""}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.slow
def test_development_defaults_fail_the_deploy_check():
    # The safe-by-default claim only means something if the check would catch a dev config.
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env={"DEBUG": "1"})
    assert result.returncode != 0


def test_a_boolean_variable_that_is_not_a_boolean_is_refused(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from raterhub.settings import env_bool, env_int

    monkeypatch.setenv("RATERHUB_FLAG", "flase")
    with pytest.raises(ImproperlyConfigured, match="RATERHUB_FLAG='flase' is not a boolean"):
        env_bool("RATERHUB_FLAG", True)
    monkeypatch.setenv("RATERHUB_FLAG", " Off ")
    assert env_bool("RATERHUB_FLAG", True) is False
    monkeypatch.setenv("RATERHUB_FLAG", "")
    assert env_bool("RATERHUB_FLAG", True) is True
    monkeypatch.setenv("RATERHUB_N", "12k")
    with pytest.raises(ImproperlyConfigured, match="not a whole number"):
        env_int("RATERHUB_N", 1)


@pytest.mark.slow
def test_production_mode_refuses_to_run_tasks_in_the_web_process():
    result = _manage("check", env={**PRODUCTION_ENV, "CELERY_TASK_ALWAYS_EAGER": "1"})
    assert result.returncode != 0
    assert "CELERY_TASK_ALWAYS_EAGER is for development only" in result.stderr


@pytest.mark.slow
def test_settings_create_no_folders(tmp_path):
    # The embedded broker's folders appear when a message is first sent, not on import.
    var = tmp_path / "var"
    result = _manage("check", env={"DEBUG": "1", "RATERHUB_VAR_DIR": str(var)})
    assert result.returncode == 0, result.stderr
    assert not (var / "celery").exists()
