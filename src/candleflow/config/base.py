"""Shared pieces of the config sections: the section base class, checked names and intervals, path lists."""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
)

from candleflow.config.feature_names import BUILTIN as _BUILTIN_FEATURES
from candleflow.config.intervals import interval_ns
from candleflow.errors import ConfigError

BINANCE_BASE_URL = "https://data.binance.vision"
# the features `features.names` may list; dataset/features.py computes exactly these (a test checks)
FEATURE_NAMES = tuple(_BUILTIN_FEATURES)  # the built-in features (the first DEFAULT_FEATURES are the default set)


def check_interval(v: str) -> str:
    try:
        interval_ns(v)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return v


Interval = Annotated[str, AfterValidator(check_interval)]


def _check_safe_name(v: str) -> str:
    from candleflow.errors import DataError
    from candleflow.fs.guard import check_name

    try:
        return check_name(v, "name")
    except DataError as exc:
        raise ValueError(str(exc).removeprefix("name ")) from None


# symbols and run names become path components (cache folders, run folders, store entries)
SafeName = Annotated[str, AfterValidator(_check_safe_name)]


def _one_is_a_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Paths = Annotated[list[str], BeforeValidator(_one_is_a_list)]  # files or globs; one path is a list of one


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def takes_bool(annotation: Any) -> bool:
    """Whether a field's type admits a boolean (bool, Any, a union or Literal holding one)."""
    import typing

    if annotation is bool or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return any(isinstance(a, bool) for a in args)
    if origin is Annotated:
        return takes_bool(args[0])
    if origin in (typing.Union, types.UnionType):
        return any(takes_bool(a) for a in args)
    return origin is None and annotation is object
