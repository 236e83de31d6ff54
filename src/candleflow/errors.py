"""One exception hierarchy. Every candleflow error has a one-line message that names the file,
row, key or value at fault and what was expected; the CLI prints it and exits with code 2.
Errors about bad values are also `ValueError`s, so `except ValueError` keeps working."""

from __future__ import annotations


class CandleflowError(Exception):
    """Base class: the CLI prints the message as one line and exits with code 2."""


class ConfigError(CandleflowError, ValueError):
    """A config key is unknown or its value is not allowed."""


class DataError(CandleflowError, ValueError):
    """Input data (candles, arrays, windows, stored files) is not what was expected."""


class SourceError(DataError):
    """A source file is missing, unreadable or lacks what is expected."""


class ValidationError(DataError):
    """Candles break a validation rule whose policy is 'error'."""


class DownloadError(SourceError):
    """A file could not be downloaded or does not match its checksum."""


class StoreError(DataError):
    """A prepared store or one of its entries is missing, damaged or does not match."""


class BuildError(CandleflowError):
    """Building entries of a prepared store failed (the message names the entries)."""


class RegistryError(CandleflowError):
    """A run folder or saved model is missing, incomplete or does not match."""


class CacheError(CandleflowError):
    """A folder given as a cache is not one candleflow wrote (no marker), or is another kind's."""


class MissingExtraError(CandleflowError, ImportError):
    """A feature's optional dependencies (a pip extra) are not installed."""


# the pip extra that brings each optional package (pyproject's [project.optional-dependencies])
EXTRAS = {
    "optuna": "tune",
    "distributed": "scale",
    "hdf5plugin": "images",
    "zarr": "images",
    "numcodecs": "images",
    "mlflow": "tracking",
    "torch": "torch",
    "exchange_calendars": "stocks",
    "yfinance": "stocks",
    "pandas": "pandas",
}


def require(module: str, what: str) -> None:
    """Raise MissingExtraError in one line, naming what needs `module` and the pip extra that
    installs it (`EXTRAS`), where `module` is not importable; checked without importing it."""
    from importlib.util import find_spec

    try:
        found = find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise MissingExtraError(
            f"{what} needs {module}, which is not installed: pip install 'candleflow[{EXTRAS[module]}]'"
        )
