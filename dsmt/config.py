"""Reading TOML configuration into frozen dataclasses, with errors that say where.

Every configuration file of DSMT (node, router, plan, package manifest) is
parsed once, through a :class:`Table`, into frozen dataclasses. A mistake
raises :class:`dsmt.errors.ConfigError` naming the file, the dotted key and
what is wrong — "conf/node.toml: limits.memory: expected a number, got 'lots'"
— and unknown keys are refused (a typo is an error, not a silent default).

Conventions (STYLE.md): durations are seconds as floats; "forever" is
``None`` (written as the string ``"infinity"`` in TOML), never ``0``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Iterator

from dsmt.errors import ConfigError

_MISSING: Any = object()
FOREVER = "infinity"


def load(path: str | Path) -> "Table":
    """The top-level table of the TOML file at ``path``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "-", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "-", f"cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "-", f"not valid TOML: {exc}") from None
    return Table(data, path)


def loads(text: str, source: str = "<string>") -> "Table":
    try:
        return Table(tomllib.loads(text), source)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "-", f"not valid TOML: {exc}") from None


class Table:
    """A TOML table being read; remembers which keys were read."""

    def __init__(self, data: dict[str, Any], source: object, prefix: str = "") -> None:
        self._data = data
        self.source = source
        self._prefix = prefix
        self._read: set[str] = set()

    def error(self, key: str, why: str) -> ConfigError:
        return ConfigError(self.source, self._prefix + key, why)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def keys(self) -> Iterator[str]:
        return iter(self._data)

    def _get(self, key: str, default: Any, kinds: tuple[type, ...], what: str) -> Any:
        self._read.add(key)
        if key not in self._data:
            if default is _MISSING:
                raise self.error(key, "missing")
            return default
        value = self._data[key]
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            raise self.error(key, f"expected {what}, got {value!r}")
        return value

    def str(self, key: str, default: Any = _MISSING, *, choices: tuple[str, ...] = ()) -> Any:
        value = self._get(key, default, (str,), "a string")
        if choices and value is not default and value not in choices:
            raise self.error(key, f"expected one of {', '.join(choices)}, got {value!r}")
        if value == "" and value is not default:
            raise self.error(key, "must not be empty")
        return value

    def int(self, key: str, default: Any = _MISSING, *, min: int | None = None) -> Any:
        value = self._get(key, default, (int,), "an integer")
        if min is not None and value is not default and value < min:
            raise self.error(key, f"must be >= {min}, got {value}")
        return value

    def number(self, key: str, default: Any = _MISSING, *, min: float | None = None) -> Any:
        value = self._get(key, default, (int, float), "a number")
        if value is default:
            return value
        if min is not None and value < min:
            raise self.error(key, f"must be >= {min}, got {value}")
        return float(value)

    def duration(self, key: str, default: Any = _MISSING) -> float | None:
        """Seconds >= 0 as a float, or None for ``"infinity"``."""
        if self._data.get(key) == FOREVER:
            self._read.add(key)
            return None
        value = self._get(key, default, (int, float), f'seconds or "{FOREVER}"')
        if value is default:
            return value
        if value < 0:
            raise self.error(key, f"must be >= 0 seconds, got {value}")
        return float(value)

    def bool(self, key: str, default: Any = _MISSING) -> Any:
        return self._get(key, default, (bool,), "true or false")

    def strings(self, key: str, default: Any = _MISSING) -> Any:
        value = self._get(key, default, (list,), "a list of strings")
        if value is default:
            return value
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise self.error(f"{key}[{i}]", f"expected a non-empty string, got {item!r}")
        return tuple(value)

    def path(self, key: str, default: Any = _MISSING, *, base: Path | None = None) -> Any:
        """A path; relative paths are taken from ``base`` (default: the file's folder)."""
        value = self.str(key, default)
        if value is default or value is None:
            return value
        if base is None and isinstance(self.source, Path):
            base = self.source.parent
        path = Path(value).expanduser()
        return path if path.is_absolute() or base is None else base / path

    def table(self, key: str, *, required: bool = False) -> "Table":
        self._read.add(key)
        value = self._data.get(key, _MISSING)
        if value is _MISSING:
            if required:
                raise self.error(key, "missing table")
            value = {}
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table, got {value!r}")
        return Table(value, self.source, f"{self._prefix}{key}.")

    def tables(self, key: str) -> list["Table"]:
        """An array of tables (``[[key]]``)."""
        self._read.add(key)
        value = self._data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(key, "expected an array of tables")
        return [Table(v, self.source, f"{self._prefix}{key}[{i}].") for i, v in enumerate(value)]

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        self._read.add(key)
        if key not in self._data:
            if default is _MISSING:
                raise self.error(key, "missing")
            return default
        return self._data[key]

    def done(self) -> None:
        """Refuse keys nobody read: a typo must not pass as a default."""
        unknown = sorted(set(self._data) - self._read)
        if unknown:
            raise self.error(unknown[0], "unknown key")
