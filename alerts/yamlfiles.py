"""Reading user-written YAML files (watchlists, source lists) without surprises.

A YAML file is hostile input like any fetched byte. `load_yaml` is
`yaml.safe_load` with the dangerous or useless parts refused, each as a
one-line `YamlProblem` naming the line:

- anchors and aliases (`&a`, `*a`, merge keys): a 1 KB file of nested
  aliases expands to millions of nodes (the "billion laughs" of YAML), and
  nothing in these files needs them;
- nesting deeper than MAX_DEPTH: PyYAML composes recursively, so 20,000
  nested brackets would end in a RecursionError;
- text holding NUL, another control character (tab and line breaks are
  fine) or a lone surrogate (`"\\ud800"`): no database stores them all, and
  they have no business in a name, a term or a URL;
- duplicate keys (a silently overwritten key loses a user's rule) and keys
  that are not text;
- files larger than the caller's `max_bytes`.

Mappings and sequences come back as `LineDict` / `LineList`, which remember
the line they start on, so every later error can name its line too.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import yaml

MAX_DEPTH = 50
_ALLOWED_CONTROLS = frozenset("\t\n\r")


class YamlProblem(ValueError):
    """A YAML file refused; the message is one line naming the position."""


class LineDict(dict[str, Any]):
    line: int = 0


class LineList(list[Any]):
    line: int = 0


def line_of(value: Any, fallback: int) -> int:
    """The line `value` starts on, if it is a mapping or list from `load_yaml`."""
    return getattr(value, "line", 0) or fallback


class _Loader(yaml.SafeLoader):
    """SafeLoader without anchors, aliases or deep nesting (see the module docstring)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise YamlProblem(f"line {line}: YAML anchors and aliases (& and *) are not allowed")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlProblem(f"line {line}: nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    result = LineDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise YamlProblem(f"line {key_node.start_mark.line + 1}: keys must be text")
        if key in result:
            raise YamlProblem(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        result[key] = loader.construct_object(value_node, deep=True)
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    return result


def _construct_str(loader: _Loader, node: yaml.ScalarNode) -> str:
    value = loader.construct_scalar(node)
    assert isinstance(value, str)
    bad = next((c for c in value if _unstorable(c)), None)
    if bad is not None:
        raise YamlProblem(
            f"line {node.start_mark.line + 1}: text holds the control character U+{ord(bad):04X}"
        )
    return value


def _unstorable(ch: str) -> bool:
    if ch.isprintable() or ch in _ALLOWED_CONTROLS:
        return False
    return unicodedata.category(ch) in ("Cc", "Cs")


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_Loader.add_constructor("tag:yaml.org,2002:str", _construct_str)


def load_yaml(text: str, *, max_bytes: int) -> Any:
    """The document in `text`, or YamlProblem (see the module docstring)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise YamlProblem(f"the file is larger than {max_bytes:,} bytes ({size:,})")
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except YamlProblem:
        raise
    except (ValueError, OverflowError) as e:  # a constructor's: 5,000-digit int, bad date
        raise YamlProblem(f"a value is out of range: {' '.join(str(e).split())[:120]}") from e
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise YamlProblem(f"{where}YAML syntax error: {e.problem or e.context}") from e
    except yaml.YAMLError as e:
        raise YamlProblem(f"YAML error: {' '.join(str(e).split())}") from e
