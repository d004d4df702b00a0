"""Shared fixtures of the Python package's tests: the installed package (never the source
tree), the `trackly-export` script of its venv, and an environment without Rust on PATH.

Run by scripts/test-python.sh, which builds the wheel, installs it into a fresh venv and runs
pytest from that venv. Nothing here skips: a missing tool is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import trackly_export

# The key of the mock servers these tests start; each test that checks "never printed" uses it.
SECRET = "trk_live_s3cr3t_d0_not_print_me"


@pytest.fixture(scope="session")
def venv_bin() -> Path:
    """The bin/ folder of the venv the wheel was installed into."""
    return Path(sys.executable).parent


@pytest.fixture(scope="session")
def cli(venv_bin: Path) -> str:
    """The `trackly-export` console script pip installed."""
    script = venv_bin / "trackly-export"
    assert script.is_file(), f"no console script at {script}"
    return str(script)


@pytest.fixture(scope="session")
def no_rust_env(venv_bin: Path) -> dict[str, str]:
    """The environment with PATH cut down to the venv and the system's bin folders, none of
    which holds cargo or rustc, and no TRACKLY_* variables."""
    path = os.pathsep.join([str(venv_bin), "/usr/local/bin", "/usr/bin", "/bin"])
    path = os.pathsep.join(p for p in path.split(os.pathsep) if not _has_rust(p))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLY_")}
    env["PATH"] = path
    env.pop("CARGO_HOME", None)
    env.pop("RUSTUP_HOME", None)
    assert shutil.which("cargo", path=path) is None
    assert shutil.which("rustc", path=path) is None
    return env


def _has_rust(folder: str) -> bool:
    return any((Path(folder) / tool).exists() for tool in ("cargo", "rustc"))


@pytest.fixture(scope="session", autouse=True)
def installed_package_not_source() -> None:
    """The tests exercise the installed wheel, not crates/python/python."""
    location = Path(trackly_export.__file__).resolve()
    assert "site-packages" in location.parts, location


def run(args: list[str], env: dict[str, str], timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Runs a command, capturing text output."""
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, **kwargs)


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def keys(rows) -> list[tuple[str, int]]:
    """The contact key, (phone_number, list_id), of each row (dicts)."""
    return [(r["phone_number"], r["list_id"]) for r in rows]
