"""Errors genlab raises on bad input. Each names the problem in one line; the CLI prints it as is."""


class GenlabError(Exception):
    """Base class: a user-facing problem with a readable one-line message."""


class ConfigError(GenlabError, ValueError):
    """A configuration value or override is invalid."""


class DataError(GenlabError, ValueError):
    """Input data is missing, malformed or out of range."""


class CheckpointError(GenlabError):
    """A checkpoint file is missing, truncated or corrupt."""


class TrainingError(GenlabError, RuntimeError):
    """Training cannot continue (e.g. a non-finite loss)."""


class StorageError(GenlabError, OSError):
    """A run folder cannot be written: the disk is full, the folder is read-only, or the path is a file."""


class RunInUseError(GenlabError):
    """Another process is training in the same run folder."""
