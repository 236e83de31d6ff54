"""Exceptions with one-line messages that name the file, row, key or value at fault."""

from __future__ import annotations


class CandleflowError(Exception):
    """Base class: the CLI prints the message as one line and exits non-zero."""


class ConfigError(CandleflowError):
    """A config key is unknown or its value is not allowed."""


class SourceError(CandleflowError):
    """A source file is missing, unreadable or lacks what is expected."""


class ValidationError(CandleflowError):
    """Candles break a validation rule whose policy is 'error'."""


class RegistryError(CandleflowError):
    """A run folder or saved model is missing, incomplete or does not match."""
