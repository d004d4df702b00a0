"""The exceptions of ``trackly_export``: one class per exit code of the ``trackly-export`` CLI.

Every class derives from :class:`TracklyExportError`, carries the CLI's ``exit_code``, and, when
the API answered with its documented error body, the API's ``code`` (e.g. ``"invalid_api_key"``)
and ``error`` (e.g. ``"Invalid API key"``). Messages never hold the API key.
"""

from __future__ import annotations


class TracklyExportError(Exception):
    """Base class of the package's errors."""

    #: The CLI's exit code for this class of failure.
    exit_code: int = 1

    def __init__(self, message: str, *, code: str | None = None, error: str | None = None) -> None:
        super().__init__(message)
        #: The API's error ``code``, when the API said one.
        self.code = code
        #: The API's ``error`` text, when the API said one.
        self.error = error

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, code={self.code!r}, error={self.error!r})"


class ConfigurationError(TracklyExportError, ValueError):
    """An unusable setting: bad argument, missing API key, bad output location (exit code 2)."""

    exit_code = 2


class AuthenticationError(TracklyExportError):
    """The API refused the API key: HTTP 401 or 403 (exit code 3)."""

    exit_code = 3


class ApiError(TracklyExportError):
    """The API failed, or answered unusably, after the retries (exit code 4)."""

    exit_code = 4


class StorageError(TracklyExportError, OSError):
    """Writing to the local disk or to object storage failed (exit code 5)."""

    exit_code = 5


class InvalidDataError(TracklyExportError):
    """A record did not fit the schema under ``on_invalid="fail"`` (exit code 6)."""

    exit_code = 6


class IncompleteError(TracklyExportError):
    """The export could not be proven to hold every contact exactly once; nothing was
    published (exit code 7)."""

    exit_code = 7


class Interrupted(TracklyExportError, KeyboardInterrupt):
    """Stopped by Ctrl-C; nothing of the run was published (exit code 130). It is a
    ``KeyboardInterrupt`` too, so code that lets Ctrl-C through lets it through."""

    exit_code = 130


__all__ = [
    "TracklyExportError",
    "ConfigurationError",
    "AuthenticationError",
    "ApiError",
    "StorageError",
    "InvalidDataError",
    "IncompleteError",
    "Interrupted",
]
