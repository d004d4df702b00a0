"""What pip installed: version, typing files, the console script."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import trackly_export
from conftest import run


def test_version_is_the_crates_version_and_the_distributions():
    assert trackly_export.__version__ == importlib.metadata.version("trackly-export")
    assert trackly_export.__version__.count(".") == 2


def test_the_package_ships_type_stubs_and_py_typed():
    folder = Path(trackly_export.__file__).parent
    assert (folder / "py.typed").is_file()
    stub = (folder / "_native.pyi").read_text()
    for name in ("def read_contacts", "def read_lists", "def export", "class ArrowStream", "class ExportSummary"):
        assert name in stub, name


def test_public_names_have_docstrings():
    for name in trackly_export.__all__:
        if name == "__version__":
            continue
        obj = getattr(trackly_export, name)
        assert obj.__doc__ and obj.__doc__.strip(), name


def test_the_console_script_is_the_rust_cli(cli, no_rust_env):
    version = run([cli, "--version"], no_rust_env)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"trackly-export {trackly_export.__version__}"
    help_text = run([cli, "--help"], no_rust_env).stdout
    for command in ("export", "demo", "schema", "mock-server", "completions"):
        assert command in help_text
    assert "130  interrupted" in help_text
