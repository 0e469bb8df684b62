"""Reading a config file: the YAML with the line of every key (so that every problem names
``file:line``), then ``${VAR}``, ``${VAR:-default}`` and ``${file:path}`` replaced, and the
passwords of URLs registered as secrets. What this makes is validated by
:mod:`omnisync.config.loader`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from omnisync import secrets
from omnisync.errors import ConfigError, Problem

#: What ``${...}`` substituted, by config path: registered as secrets where the path is a
#: field its connector declares secret (a token written as ``Bearer ${TOKEN}``).
Pieces = dict[tuple[Any, ...], list[str]]


@dataclass
class ConfigFile:
    """A config file read and interpolated, not validated yet."""

    #: The file's bytes (the config's fingerprint is theirs).
    raw: bytes
    #: The file's mapping, ``${...}`` replaced.
    data: dict[Any, Any]
    #: ``file:line`` of a config path.
    locate: Locator
    #: The folder of the config file: relative paths in it are read from there.
    base_dir: Path
    #: What ``${...}`` could not replace, by config path.
    problems: list[tuple[tuple[Any, ...], str]]
    #: What ``${...}`` put in, by config path.
    pieces: Pieces


def read_config_file(path: Path, shown: str) -> ConfigFile:
    """Read, parse and interpolate the config file at ``path`` (``shown`` as written, in
    messages); a file that cannot be read or is no YAML mapping raises :class:`ConfigError`."""
    raw = _read_bytes(path, shown)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [Problem(f"{shown}:{line}", "config file is not UTF-8")], hint="save it as UTF-8"
        ) from None
    data, lines = load_with_lines(text, shown)
    locate = Locator(shown, lines)
    base_dir = path.resolve().parent
    if not isinstance(data, dict):
        raise ConfigError(
            [Problem(f"{shown}:1", "expected a mapping with `canonical:` and `channels:`")],
            hint="start from config.example.yaml",
        )
    problems: list[tuple[tuple[Any, ...], str]] = []
    pieces: Pieces = {}
    data = interpolate(data, (), base_dir, problems, pieces)
    register_url_passwords(data)
    return ConfigFile(raw, data, locate, base_dir, problems, pieces)


def _read_bytes(path: Path, shown: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [Problem(shown, "config file not found")],
            hint="pass -c PATH or copy config.example.yaml to get started",
        ) from None
    except OSError as exc:
        raise ConfigError([Problem(shown, f"cannot read config file: {exc.strerror}")]) from None


# ---------------------------------------------------------------- YAML with line numbers


#: A config is a few levels deep; deeper nesting is an attack or an accident (and would
#: exhaust Python's recursion).
MAX_DEPTH = 64
#: Values a config may expand to through its aliases (``*name``): an "alias bomb" of a few
#: lines expands to billions and would hang the loader.
MAX_VALUES = 200_000
_COLLECTION_TAGS: dict[type[yaml.Node], str] = {
    yaml.MappingNode: "tag:yaml.org,2002:map",
    yaml.SequenceNode: "tag:yaml.org,2002:seq",
}


class _Loader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every key and value by its dotted path, and
    refuses nesting beyond :data:`MAX_DEPTH` while it composes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, _too_deep(), self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _too_deep() -> str:
    return f"nested more than {MAX_DEPTH} levels deep"


def _yaml_problem(name: str, mark: Any, message: str, hint: str) -> ConfigError:
    line = mark.line + 1 if mark else 0
    return ConfigError([Problem(f"{name}:{line}", message)], hint=hint)


def _unreadable(name: str, text: str, exc: yaml.reader.ReaderError) -> ConfigError:
    """A character YAML refuses (NUL, other control characters): the line it is on."""
    line = text.count("\n", 0, max(exc.position, 0)) + 1
    character = (
        exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
    )
    return ConfigError(
        [Problem(f"{name}:{line}", f"character U+{character:04X} is not allowed in YAML")],
        hint="remove the control character (an editor or a copy from a terminal put it there)",
    )


_TAG_HINT = (
    "omnisync reads plain YAML: no custom tags such as !include; quote values that start with !"
)


def load_with_lines(text: str, name: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """The data of the YAML ``text`` (from file ``name``) and the line of every config path."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        raise _unreadable(name, text, exc) from None
    try:
        node = loader.get_single_node()
    except yaml.reader.ReaderError as exc:
        raise _unreadable(name, text, exc) from None
    except yaml.MarkedYAMLError as exc:
        raise _yaml_problem(
            name,
            exc.problem_mark,
            f"not valid YAML: {exc.problem}",
            "fix the YAML syntax (indentation, quotes, colons)",
        ) from None
    finally:
        loader.dispose()
    lines: dict[tuple[Any, ...], int] = {}
    if node is None:
        return None, lines
    try:
        return _walk(loader, node, name, lines), lines
    except yaml.MarkedYAMLError as exc:
        problem = f"{exc.context}: {exc.problem}" if exc.context else str(exc.problem)
        raise _yaml_problem(name, exc.problem_mark, problem, _TAG_HINT) from None


def _walk(loader: _Loader, node: yaml.Node, name: str, lines: dict[tuple[Any, ...], int]) -> Any:
    """The Python value of ``node``, recording lines; aliases are expanded within
    :data:`MAX_VALUES` and nesting (recursive aliases too) within :data:`MAX_DEPTH`."""
    budget = [MAX_VALUES]

    def problem(n: yaml.Node, message: str, hint: str = _TAG_HINT) -> ConfigError:
        return _yaml_problem(name, n.start_mark, message, hint)

    def scalar(n: yaml.Node) -> Any:
        try:
            return loader.construct_object(n, deep=True)
        except yaml.MarkedYAMLError as exc:
            raise problem(n, f"cannot read {n.value!r} as {n.tag}: {exc.problem}") from None
        except (ValueError, TypeError, OverflowError) as exc:
            raise problem(n, f"cannot read {n.value!r} as {n.tag}: {exc}") from None

    def walk(n: yaml.Node, path: tuple[Any, ...]) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise problem(
                n,
                f"aliases (*name) expand the configuration beyond {MAX_VALUES} values",
                "repeat a block by alias a few times only; an alias of an alias of ... "
                "expands exponentially",
            )
        if len(path) > MAX_DEPTH:
            raise problem(n, _too_deep(), "a recursive alias (an anchor used inside itself)?")
        lines.setdefault(path, n.start_mark.line + 1)
        wanted = _COLLECTION_TAGS.get(type(n))
        if wanted is not None and n.tag != wanted:
            raise problem(n, f"the tag {n.tag!r} is not supported here")
        if isinstance(n, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in n.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise problem(key_node, "a key must be a plain value, not a block", "")
                key = scalar(key_node)
                if key in out:
                    raise ConfigError(
                        [
                            Problem(
                                f"{name}:{key_node.start_mark.line + 1}", f"duplicate key {key!r}"
                            )
                        ],
                        hint="each key may appear once per block",
                    )
                lines[(*path, key)] = key_node.start_mark.line + 1
                out[key] = walk(value_node, (*path, key))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [walk(child, (*path, i)) for i, child in enumerate(n.value)]
        return scalar(n)

    return walk(node, ())


# ---------------------------------------------------------------- ${ENV} and ${file:}


def interpolate(
    value: Any,
    path: tuple[Any, ...],
    base_dir: Path,
    problems: list[tuple[tuple[Any, ...], str]],
    pieces: Pieces,
) -> Any:
    """``value`` (at config ``path``) with every ``${...}`` in its strings replaced; what
    cannot be replaced goes to ``problems``, what was put in to ``pieces``."""
    if isinstance(value, dict):
        return {k: interpolate(v, (*path, k), base_dir, problems, pieces) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, (*path, i), base_dir, problems, pieces) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    return _Expander(path, base_dir, problems, pieces).expand(value)


@dataclass
class _Expander:
    """Expands ``${VAR}``, ``${VAR:-default}`` and ``${file:path}`` in one config value.

    A default may itself hold references (``${A:-${B}}``: A, else B, else an error naming B),
    so braces are matched by nesting depth rather than by a regex that would stop at the
    first ``}`` and leave ``${B`` in the value."""

    path: tuple[Any, ...]
    base_dir: Path
    problems: list[tuple[tuple[Any, ...], str]]
    pieces: Pieces

    def expand(self, text: str) -> str:
        out, i = [], 0
        while (start := text.find("${", i)) >= 0:
            end = _closing_brace(text, start + 2)
            if end < 0:
                self.problems.append(
                    (self.path, f"{text[start:]!r} has no closing brace (write ${{NAME}})")
                )
                return ""
            out += [text[i:start], self.resolve(text[start + 2 : end].strip())]
            i = end + 1
        out.append(text[i:])
        return "".join(out)

    def resolve(self, body: str) -> str:
        if body.startswith("file:"):
            return self.read_file(body[5:].strip())
        var, sep, default = body.partition(":-")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
            self.problems.append(
                (self.path, f"${{{body}}} is not a valid variable reference (use ${{NAME}})")
            )
            return ""
        env = os.environ.get(var)
        if env is None:
            if sep:
                return self.expand(default)
            self.problems.append((self.path, f"environment variable {var} is not set"))
            return ""
        self.pieces.setdefault(self.path, []).append(env)
        return env

    def read_file(self, name: str) -> str:
        file_path = Path(name).expanduser()
        if not file_path.is_absolute():
            file_path = self.base_dir / file_path
        try:
            content = file_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            self.problems.append((self.path, f"cannot read file {file_path}: {exc.strerror}"))
            return ""
        self.pieces.setdefault(self.path, []).append(content)
        return content


def _closing_brace(text: str, i: int) -> int:
    """Index of the ``}`` closing the ``${`` just before ``i`` (nested ones counted), or -1."""
    depth = 1
    while i < len(text):
        if text.startswith("${", i):
            depth, i = depth + 1, i + 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def register_url_passwords(value: Any) -> None:
    """Register the password of every credentialed URL in the config (DSNs, store URLs)."""
    if isinstance(value, dict):
        for v in value.values():
            register_url_passwords(v)
    elif isinstance(value, list):
        for v in value:
            register_url_passwords(v)
    elif isinstance(value, str):
        secrets.register_url_passwords(value)


# ---------------------------------------------------------------- where a problem is


class Locator:
    """``file:line`` of a config path: the line of the path, else of its nearest parent (a
    missing key is reported at its block)."""

    def __init__(self, name: str, lines: dict[tuple[Any, ...], int]) -> None:
        self.name = name
        self.lines = lines

    def __call__(self, path: tuple[Any, ...]) -> str:
        probe = tuple(path)
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe, 1)
        return f"{self.name}:{line}"


def dotted(path: tuple[Any, ...]) -> str:
    """A config path as people write it: ``channels.shop.push.fields[2]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
