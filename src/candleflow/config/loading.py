"""Loading a config: YAML files, `--set` overrides, keyword overrides, and one-line errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from candleflow.config.base import (
    takes_bool,
)
from candleflow.config.run import RunConfig
from candleflow.config.sources import (
    BinanceSource,
    FilesSource,
    SyntheticSource,
)
from candleflow.errors import ConfigError


def load_config(
    path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None, **settings: Any
) -> RunConfig:
    """Read a YAML config (or the embedded default), apply overrides, validate.

    Overrides are `key=value` strings as `--set` takes them (values read as YAML), or a mapping
    of dotted keys to Python values, or keyword arguments with `__` for the dots::

        load_config(overrides=["training.epochs=1"])
        load_config(overrides={"training.epochs": 1, "features.names": ["rsi", "macd(12, 26, 9)"]})
        load_config(training__epochs=1, model__kind="lightgbm")
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if p.is_dir():
            raise ConfigError(f"config file {str(p)!r} is a folder; expected a YAML file")
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {str(p)!r}: not UTF-8 text (byte {exc.start}); expected YAML") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(
                f"config file {str(p)!r}{where}: not valid YAML ({getattr(exc, 'problem', exc)})"
            ) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {str(p)!r}: expected a mapping of sections, got {type(loaded).__name__}")
        data = loaded
    if isinstance(overrides, dict):
        pairs = list(overrides.items())
    else:
        for item in overrides or []:
            apply_override(data, item)
        pairs = []
    for key, value in [*pairs, *((k.replace("__", "."), v) for k, v in settings.items())]:
        set_key(data, str(key), value)
    return validate_config(data)


def set_key(data: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key to a Python value (no YAML parsing) in a nested dict, as `--set` would."""
    parts = key.strip().split(".")
    if not key.strip() or not all(parts):
        raise ConfigError(f"override {key!r}: expected a dotted key such as labels.horizon")
    node = data
    for part in parts[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a section")
        node = nxt
    if parts[-1] == "kind" and _is_source_path(parts) and value != _implied_kind(node):
        node.clear()  # another kind of source replaces the source: its old keys mean nothing to the new one
    node[parts[-1]] = value


def apply_override(data: dict[str, Any], item: str) -> None:
    """Set a dotted key from 'a.b.c=value' (value parsed as YAML) in a nested dict."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r}: expected key=value, e.g. labels.horizon=48")
    try:
        value = yaml.safe_load(_quote_calls(raw)) if raw.strip() else raw
    except yaml.YAMLError as exc:
        if raw.strip().startswith(("[", "{")):  # meant as a list or mapping: say why it is not one
            raise ConfigError(
                f"--set {key.strip()}={raw}: not valid YAML ({getattr(exc, 'problem', exc)}); quote items "
                f"that hold brackets, braces or commas, e.g. {key.strip()}=['data/{{symbol}}-[0-9]*.csv']"
            ) from None
        value = raw  # a plain string that YAML cannot read stays as written
    try:
        set_key(data, key, value)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace(f"override {key.strip()!r}", f"override {item!r}", 1)) from None


def _quote_calls(raw: str) -> str:
    """A flow list whose items hold parentheses with commas, `[macd(12, 26, 9), rsi]` (feature
    names as the docs write them), with those items quoted so that YAML reads one item each:
    `['macd(12, 26, 9)', rsi]`. Anything else is returned as it is."""
    text = raw.strip()
    if not (text.startswith("[") and text.endswith("]") and "(" in text):
        return raw
    items, depth, current = [], 0, ""
    for ch in text[1:-1]:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += ch
    items.append(current.strip())
    if depth != 0:
        return raw
    quoted = [f"'{i.replace(chr(39), chr(39) * 2)}'" if "(" in i and i[:1] not in "'\"" else i for i in items]
    return "[" + ", ".join(quoted) + "]"


def _is_source_path(parts: list[str]) -> bool:
    """`source.kind` or `universe.sources.NAME.kind`."""
    return parts == ["source", "kind"] or (len(parts) == 4 and parts[:2] == ["universe", "sources"])


def _implied_kind(source: dict[str, Any]) -> str | None:
    """The kind a source section has (as validate_config reads it), None for an empty section."""
    if not source:
        return None
    return source.get("kind") or ("files" if "paths" in source else "synthetic")


def validate_config(data: dict[str, Any]) -> RunConfig:
    """Validate a config mapping; the first problem becomes one line naming key and value."""
    universe: dict[str, Any] = data["universe"] if isinstance(data.get("universe"), dict) else {}
    named: dict[str, Any] = universe["sources"] if isinstance(universe.get("sources"), dict) else {}
    for source in [data.get("source"), *named.values()]:
        if isinstance(source, dict) and "kind" not in source:
            source["kind"] = "files" if "paths" in source else "synthetic"
    _refuse_booleans(RunConfig, data, "")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, data)) from None


def _refuse_booleans(model: Any, data: Any, prefix: str) -> None:
    """`labels.tp: true` is not 1.0: a boolean is accepted only where a key takes one (pydantic's
    lax mode would read it as a number), refused in one line naming the key."""
    import typing

    if not isinstance(data, dict) or not hasattr(model, "model_fields"):
        return
    for name, value in data.items():
        field = model.model_fields.get(name)
        if field is None:
            continue
        key = f"{prefix}{name}"
        if isinstance(value, bool) and not takes_bool(field.annotation):
            raise ConfigError(f"config key {key!r} = {str(value).lower()}: expected a number or a name, not a boolean")
        if not isinstance(value, dict):
            continue
        ann = field.annotation
        if typing.get_origin(ann) is dict:  # named sections (universe.sources): each one checked
            for sub_name, sub in value.items():
                _refuse_booleans_in(typing.get_args(ann)[1], sub, f"{key}.{sub_name}.")
        else:
            _refuse_booleans_in(ann, value, key + ".")


def _refuse_booleans_in(annotation: Any, data: Any, prefix: str) -> None:
    """_refuse_booleans on the section type `annotation` names: a section, or a union of them
    (the sources: the one the data's kind names, else the first)."""
    import typing

    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    options = typing.get_args(annotation) or (annotation,)
    sections = [a for a in options if isinstance(a, type) and hasattr(a, "model_fields")]
    kind = data.get("kind") if isinstance(data, dict) else None
    for sub in sections:
        if kind is None or sub.model_fields.get("kind") is None or sub.model_fields["kind"].default == kind:
            _refuse_booleans(sub, data, prefix)
            return


M = TypeVar("M", bound=BaseModel)


def validate_options(model: type[M], values: dict[str, Any]) -> M:
    """`model` from command-line options (None: the model's default); the first problem is one
    line naming the option, e.g. "--concurrency 99: Input should be less than or equal to 64"."""
    given = {k: v for k, v in values.items() if v is not None}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else ""
        flag = "--" + name.replace("_", "-")
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{flag} {quote_value(given.get(name))}: {msg}" if name else msg) from None


def flatten_keys(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config mapping as {dotted key: value}, the form --set and error messages use."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten_keys(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def quote_value(value: Any, limit: int = 80) -> str:
    """repr(value) cut to `limit` characters, so an error line stays one line however big the
    value (a YAML alias bomb is billions of items: only the first few are ever looked at)."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxdict, short.maxtuple, short.maxstring, short.maxother = 3, 6, 6, 6, 60, 60
    text = short.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"] if not (isinstance(p, str) and p in ("synthetic", "files", "binance"))]
    key = ".".join(loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1], data)
        return f"config key {key!r} is not known" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        return f"config key {key!r} is required"
    if isinstance(err.get("input"), dict):  # a rule across a section's keys: the message names them
        return msg if re.match(r"^[a-z_]+\.[a-z_0-9.]+\b", msg) else f"config section {key!r}: {msg}"
    return f"config key {key!r} = {quote_value(err.get('input'))}: {msg}"


def _allowed_keys(loc: list[str], data: dict[str, Any]) -> list[str]:
    model: type[BaseModel] = RunConfig
    node: Any = data
    for part in loc:
        field = model.model_fields.get(part)
        node = node.get(part, {}) if isinstance(node, dict) else {}
        if field is None:
            return []
        ann = field.annotation
        if part == "source":
            kind = node.get("kind", "synthetic") if isinstance(node, dict) else "synthetic"
            ann = {"files": FilesSource, "binance": BinanceSource}.get(kind, SyntheticSource)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)
