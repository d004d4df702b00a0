"""Every exception class, from read_contacts/read_lists and export, with the exit code of the
CLI and the API's code/error; the key never in a message or repr."""

from __future__ import annotations

import pytest

import trackly_export
from conftest import SECRET
from trackly_export import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    IncompleteError,
    InvalidDataError,
    Interrupted,
    StorageError,
    TracklyExportError,
)
from trackly_export.mock import MockServer


def assert_no_secret(error: BaseException) -> None:
    assert SECRET not in str(error)
    assert SECRET not in repr(error)


def test_the_classes_carry_the_cli_exit_codes():
    codes = {
        ConfigurationError: 2,
        AuthenticationError: 3,
        ApiError: 4,
        StorageError: 5,
        InvalidDataError: 6,
        IncompleteError: 7,
        Interrupted: 130,
    }
    for cls, code in codes.items():
        assert issubclass(cls, TracklyExportError)
        assert cls.exit_code == code
    assert issubclass(Interrupted, KeyboardInterrupt)


def test_configuration_errors(monkeypatch):
    monkeypatch.delenv("TRACKLY_API_KEY", raising=False)
    with pytest.raises(ConfigurationError):
        trackly_export.read_contacts(base_url="http://127.0.0.1:9/api")
    with pytest.raises(ConfigurationError, match="list_number"):
        trackly_export.read_contacts(SECRET, list_number="12345")
    with pytest.raises(ConfigurationError, match="on_invalid"):
        trackly_export.read_contacts(SECRET, on_invalid="ignore")
    with pytest.raises(ConfigurationError, match="table_format"):
        trackly_export.export("/tmp/x", api_key=SECRET, table_format="iceberg")
    with pytest.raises(ConfigurationError, match="unsupported scheme"):
        trackly_export.export("ftp://bucket/x", api_key=SECRET)
    with pytest.raises(ConfigurationError, match="storage option"):
        trackly_export.export("s3://bucket/x", api_key=SECRET, storage_options={"aws_colour": "blue"})
    with pytest.raises(ConfigurationError) as raised:
        trackly_export.export("/tmp/x", api_key=SECRET, per_page=0)
    assert_no_secret(raised.value)


def test_authentication_error_carries_the_api_code():
    with MockServer(100, api_key="trk_other") as mock:
        with pytest.raises(AuthenticationError) as raised:
            trackly_export.read_contacts(SECRET, base_url=mock.base_url)
        assert raised.value.code == "invalid_api_key"
        assert raised.value.error == "Invalid API key"
        assert_no_secret(raised.value)
        with pytest.raises(AuthenticationError):
            trackly_export.read_lists(SECRET, base_url=mock.base_url)
    with MockServer(100, api_key=SECRET, suspended=True) as mock:
        with pytest.raises(AuthenticationError) as raised:
            trackly_export.read_contacts(SECRET, base_url=mock.base_url)
        assert raised.value.error == "Account is suspended"


def test_api_error_carries_the_api_code():
    with MockServer(100, api_key=SECRET, p_500=1.0) as mock:
        with pytest.raises(ApiError) as raised:
            trackly_export.read_contacts(SECRET, base_url=mock.base_url, max_attempts=1)
    assert raised.value.code == "internal_error"
    assert raised.value.exit_code == 4
    assert_no_secret(raised.value)


def test_storage_error(tmp_path):
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / "contacts").write_text("a file where the table's folder goes")
    with MockServer(100, api_key=SECRET) as mock:
        with pytest.raises(StorageError) as raised:
            trackly_export.export(lake, api_key=SECRET, base_url=mock.base_url)
    assert isinstance(raised.value, OSError)
    assert_no_secret(raised.value)


def test_invalid_data_error(tmp_path):
    with MockServer(100, api_key=SECRET, damaged=[(10, "nan")]) as mock:
        with pytest.raises(InvalidDataError):
            trackly_export.read_contacts(SECRET, base_url=mock.base_url)
        with pytest.raises(InvalidDataError) as raised:
            trackly_export.export(tmp_path / "lake", api_key=SECRET, base_url=mock.base_url)
        assert_no_secret(raised.value)
        # Quarantined instead, the export goes through and counts the reject.
        summary = trackly_export.export(
            tmp_path / "lake2", api_key=SECRET, base_url=mock.base_url, on_invalid="quarantine"
        )
        assert summary.rejects == 1
        assert summary.rows == 99


def test_incomplete_error(tmp_path):
    with MockServer(300, api_key=SECRET, lists=9, lists_churn=True, lists_per_page=2) as mock:
        with pytest.raises(IncompleteError) as raised:
            trackly_export.export(tmp_path / "lake", api_key=SECRET, base_url=mock.base_url)
    assert "the lists changed while they were read" in str(raised.value)
    assert not list((tmp_path / "lake").rglob("_SUCCESS"))
