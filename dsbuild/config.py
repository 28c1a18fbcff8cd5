"""Builder options: typed dataclasses, filled from defaults, a YAML/TOML file, then ``--set`` overrides.

A builder declares its options as a dataclass; each field's ``metadata["help"]`` documents it
(``dsbuild info NAME`` prints them). Resolution order, later wins: defaults, config file,
``--set key=value`` overrides. Values from the command line are parsed as YAML scalars and then
checked against the field's type, so ``--set min_len=3`` gives an int and ``--set x=abc`` for an
int field is a clear error.

Every error names where the value came from (``opts.yaml:3:5``, ``--set languages=[en, es``) and
what is wrong. A value that starts like YAML structure (``[``, ``{``, a quote) must parse; other
text that YAML cannot read (``,``, ``@x``) is taken as written. A string option keeps the text
typed on the command line, so ``--set src_lang=no`` is Norwegian, not ``false``, and
``--set revision=1.10`` is not the number 1.1.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import hashlib
import json
import re
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from dsbuild.errors import ConfigError


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with a help text: ``lang: str = option("es", "target language")``."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kwargs)
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


class OptionLayer(dict[str, Any]):
    """Option values from one place (a config file, or the ``--set`` overrides), remembering where.

    A plain ``dict`` of option names to values, plus ``where[key]`` (``"opts.yaml:3"``,
    ``"--set n=x"``) for error messages and ``raw[key]``, the text typed on the command line, so a
    string option gets what the user wrote (``no``, ``1.10``) rather than YAML's reading of it.
    """

    def __init__(self, values: Mapping[str, Any] | Iterable[tuple[str, Any]] = (), *, source: str = "",
                 where: Mapping[str, str] | None = None, raw: Mapping[str, str] | None = None) -> None:
        super().__init__(values)
        self.source = source
        self.where: dict[str, str] = dict(where or {})
        self.raw: dict[str, str] = dict(raw or {})

    def where_of(self, key: str) -> str:
        """Where ``key`` was set (``file:line``, ``--set key=value``), else the layer's source."""
        return self.where.get(key, self.source)


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping key given twice in a YAML config file."""


class _ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:  # type: ignore[override]
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.setdefault(key, key_node.start_mark.line)
            except TypeError:  # unhashable key: SafeLoader reports it
                continue
            if first != key_node.start_mark.line:
                raise _DuplicateKey(None, None, f"{key!r} is given twice (first on line {first + 1}); "
                                                f"keep one", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(err: yaml.YAMLError) -> tuple[str, int | None, int | None]:
    """``(problem, line, column)`` of a YAML error, 1-based; the position is that of the problem."""
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "invalid YAML"
        if err.context and err.problem and err.context_mark is not None:
            problem = f"{problem} ({err.context} on line {err.context_mark.line + 1})"
        if mark is not None:
            return problem, mark.line + 1, mark.column + 1
        return problem, None, None
    return str(err).splitlines()[0] if str(err) else type(err).__name__, None, None


def load_config_file(path: str | Path) -> OptionLayer:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file of options.

    Errors name ``file:line:column`` and what to fix: a syntax error, an option given twice, a file
    that is not UTF-8 or does not hold a mapping.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a config file" if path.is_dir() else "config file not found"
        raise ConfigError(f"{path}: {what}; give a .yaml/.yml or .toml file of option names and values")
    data_bytes = path.read_bytes()
    try:
        text = data_bytes.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data_bytes[:err.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: the config file is not UTF-8 (byte 0x{data_bytes[err.start]:02x}); "
                          f"save it as UTF-8") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    lines: dict[str, int] = {}
    if path.suffix == ".toml":
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            message = str(err)
            m = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", message)
            if m:
                message, where = message[:m.start()], f":{m.group(1)}:{m.group(2)}"
            else:
                end = re.search(r"\s*\(at end of document\)\s*$", message)
                if end:
                    message = message[:end.start()]
                where = f":{text.count(chr(10)) + 1}" if end else ""
            raise ConfigError(f"{path}{where}: invalid TOML: {message}; fix the syntax (a string value needs "
                              f"quotes: key = \"value\"; a list is key = [\"a\", \"b\"])") from None
    else:
        loader = _ConfigLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
            if isinstance(node, yaml.MappingNode):
                lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
        except yaml.YAMLError as err:
            problem, line, column = _yaml_problem(err)
            where = f":{line}:{column}" if line is not None else ""
            if isinstance(err, _DuplicateKey):
                raise ConfigError(f"{path}{where}: {problem}") from None
            raise ConfigError(f"{path}{where}: invalid YAML: {problem}; fix the file (quote a value that holds "
                              f"': ', ' #', or starts with [ {{ * & ! | > @ `)") from None
        finally:
            loader.dispose()
        data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping of option names to values "
                          f"(name: value, one per line), not a {type(data).__name__}")
    return OptionLayer(data, source=str(path), where={k: f"{path}:{n}" for k, n in lines.items()})


#: spellings that YAML reads as null on purpose
_NULLS = frozenset({"null", "Null", "NULL", "~"})


def parse_value(text: str, *, key: str = "") -> Any:
    """One ``--set`` value: YAML (``3``, ``true``, ``[a, b]``, ``{k: v}``, ``de``), read safely.

    A value that starts like YAML structure or a quoted string (``[``, ``{``, ``"``, ``'``) must
    parse: ``[en, es`` is an error naming the YAML problem, not the string ``"[en, es"``. Plain
    text that YAML cannot read or would silently change (``,``, ``@x``, ``|``, ``a # b``, ``#``)
    is taken as written.
    """
    stripped = text.strip()
    if not stripped:
        return ""
    structured = stripped[0] in "[{\"'"
    try:
        value = yaml.safe_load(stripped)
    except yaml.YAMLError as err:
        if not structured:
            return stripped
        problem = getattr(err, "problem", None) or _yaml_problem(err)[0]
        mark = getattr(err, "problem_mark", None)
        at = f" at character {mark.column + 1} of the value" if mark is not None else ""
        fix = {"[": f"write a list as --set '{key}=[en, es]' (quote the whole KEY=VALUE for the shell) "
                    f"or as {key}=en,es",
               "{": f"close the mapping: --set '{key}={{name: value}}' (quote the whole KEY=VALUE for the shell)"
               }.get(stripped[0], f"close the quote, or leave the quotes out: --set {key}=TEXT")
        raise ConfigError(f"--set {key}={text}: not valid YAML ({problem}{at}); {fix}") from None
    if structured or stripped.startswith("!"):
        return value
    if value is None and stripped not in _NULLS:
        return stripped  # '#', '&x', '|'...: YAML syntax, meant as text
    if isinstance(value, str) and value != stripped:
        return stripped  # 'a # b' (a comment), '|' (a block scalar): keep what was typed
    if isinstance(value, (list, dict)) and None in (list(value) + list(value.values() if isinstance(value, dict) else [])):
        return stripped  # '-', '?', 'a:': block syntax with nothing in it
    return value


def parse_overrides(pairs: Sequence[str]) -> OptionLayer:
    """Parse ``key=value`` strings into an :class:`OptionLayer`; values as :func:`parse_value`."""
    out = OptionLayer(source="--set")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {pair!r}: expected key=value, for example --set target_lang=de")
        out[key] = parse_value(value, key=key)
        out.where[key] = f"--set {pair}"
        out.raw[key] = value.strip()
    return out


def resolve_options(options_cls: type, *layers: Mapping[str, Any]) -> Any:
    """Instantiate ``options_cls`` from layers of overrides (later layers win), type-checked.

    An error names where the value came from when the layer is an :class:`OptionLayer`
    (``opts.yaml:3: option 'n': expected an integer, got 'x'``).
    """
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    hints = typing.get_type_hints(options_cls)
    merged: dict[str, Any] = {}
    for layer in layers:
        where_of = layer.where_of if isinstance(layer, OptionLayer) else (lambda key: "")
        raw = layer.raw if isinstance(layer, OptionLayer) else {}
        for key, value in layer.items():
            where = where_of(key)
            prefix = f"{where}: " if where else ""
            if key not in fields:
                close = difflib.get_close_matches(str(key), fields, n=3)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise ConfigError(f"{prefix}unknown option {key!r}.{hint} Options: {', '.join(sorted(fields))}.")
            try:
                merged[key] = _coerce(key, value, hints[key], raw.get(key))
            except ConfigError as err:
                raise ConfigError(f"{prefix}{err}") from None
    return options_cls(**merged)


_YAML_WORDS = "YAML reads yes/no/on/off as true/false and 2024-01-01 as a date: quote the value, e.g. 'no'"


def _coerce(key: str, value: Any, hint: Any, raw: str | None = None) -> Any:
    """``value`` checked against (and converted to) the type ``hint``; ``raw`` is the typed text, if any."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(key, value, arg, raw)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"option {key!r}: invalid value {value!r}")
    if origin is typing.Literal:
        if value in args and type(value) is type(next(a for a in args if a == value)):
            return value
        for text in (raw, value if isinstance(value, str) else None):
            match = [a for a in args if text is not None and str(a) == text.strip()]
            if match:
                return match[0]
        close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
        hint_text = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"option {key!r}: {value!r} is not one of {' | '.join(map(str, args))}{hint_text}")
    if origin in (list, tuple) or hint in (list, tuple):
        if raw is not None and not isinstance(value, (list, tuple, str)):
            value = raw  # --set langs=no: a one-item list, not [false]
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"option {key!r}: expected a list (a, b or [a, b]), got {value!r}")
        inner = args[0] if args else Any
        return [_coerce(key, v, inner) for v in value]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"option {key!r}: expected a mapping ({{name: value, ...}}), got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"option {key!r}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"option {key!r}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"option {key!r}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        if raw is not None and isinstance(value, (bool, int, float, datetime.date)):
            return raw  # what was typed: 'no' (Norwegian), '1.10', '0123'
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        extra = f" ({_YAML_WORDS})" if isinstance(value, (bool, datetime.date)) else ""
        raise ConfigError(f"option {key!r}: expected a string, got {value!r}{extra}")
    if hint is Path:
        if raw is not None and not isinstance(value, (list, dict)) and value is not None:
            return Path(raw)
        if isinstance(value, (str, Path)):
            return Path(value)
        raise ConfigError(f"option {key!r}: expected a path, got {value!r}")
    return value


def options_to_dict(options: Any) -> dict[str, Any]:
    """A JSON-safe dict of resolved options (paths as strings)."""
    return json.loads(json.dumps(dataclasses.asdict(options), default=str, sort_keys=True))


def config_hash(options: Any) -> str:
    """A stable hash of resolved options: same options, same hash."""
    blob = json.dumps(options_to_dict(options), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def type_label(hint: Any) -> str:
    """A short, readable name for an option's type: ``int``, ``list[str]``, ``reject | keep-partial``.

    A ``Literal`` shows its allowed values; ``X | None`` shows ``X | null`` (``null`` in YAML).
    """
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [type_label(a) for a in args if a is not type(None)]
        return " | ".join(parts + (["null"] if type(None) in args else []))
    if origin in (list, tuple, set, frozenset):
        inner = [type_label(a) for a in args if a is not Ellipsis]
        return f"{origin.__name__}[{', '.join(inner)}]" if inner and inner != ["any"] else origin.__name__
    if origin is dict or hint is dict:
        return "dict"
    if hint is Any:
        return "any"
    if hint is type(None):
        return "null"
    if isinstance(hint, type) and issubclass(hint, Path):
        return "path"
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def describe_options(options_cls: type) -> list[tuple[str, str, Any, str]]:
    """``(name, type, default, help)`` for every option, for ``dsbuild info``; the type as :func:`type_label`."""
    hints = typing.get_type_hints(options_cls)
    rows = []
    for f in dataclasses.fields(options_cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore[misc]
        rows.append((f.name, type_label(hints[f.name]), default, f.metadata.get("help", "")))
    return rows
