"""The project's own exceptions. Library code raises these; only `cli.py` turns them into messages."""

from __future__ import annotations


class TonevaktError(Exception):
    """Base class of every error Tonevakt raises on purpose."""


class ConfigError(TonevaktError):
    """The configuration file is missing, malformed or holds an invalid value."""


class StorageError(TonevaktError):
    """The database could not be opened, migrated or written."""


class DatabaseLockedError(StorageError):
    """Another process held the database lock for longer than we were willing to wait."""


class ReadOnlyQueryError(TonevaktError):
    """A query given to `tonevakt sql` would modify the database."""


class ImportFileError(TonevaktError):
    """A file given to `tonevakt import` (or found in an inbox) cannot be read."""


class ModelError(TonevaktError):
    """The sentiment model could not be loaded or does not fit its head/config."""


class ReportError(TonevaktError):
    """A report could not be produced."""
