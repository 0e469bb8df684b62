"""The config file's JSON Schema (``omnisync schema``), for editors: completion, hover help
and red squiggles while a config is written.

It is generated from the models that validate the file (:mod:`.schema`) and from the
options model of every installed connector, so a third-party connector's options complete
too. A channel's ``options:`` follow its ``connector:`` (an ``if``/``then`` per connector).

Two things differ from the models on purpose:

- ``${VAR}`` and ``${file:...}`` are replaced before validation (:mod:`.reading`), so a
  value the models want as a number, a boolean or one of a few words may also be a string
  holding a reference; the schema accepts those.
- The ``#:`` comments above the models' fields become their descriptions (hover help).

The schema may accept a little more than ``omnisync validate`` (rules that span keys,
connection checks); it never refuses a config that loads.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from omnisync.config.schema import ConfigModel
from omnisync.errors import UnknownConnectorError
from omnisync.sdk import connector as sdk
from omnisync.sdk.connector import ConnectorOptions

log = logging.getLogger("omnisync")

#: Draft 7: what yaml-language-server (VS Code's YAML extension and most editors) supports.
DIALECT = "http://json-schema.org/draft-07/schema#"

#: A string with a ``${...}`` reference: what it holds is only known once it is replaced.
INTERPOLATED: dict[str, Any] = {
    "type": "string",
    "pattern": r"\$\{.+\}",
    "description": "${VAR}, ${VAR:-default} or ${file:path}: replaced before validation.",
}

#: Keys that describe a value rather than constrain it.
_METADATA = ("title", "description", "default", "examples", "deprecated")
#: Keys whose values are schemas, lists of schemas or maps of schemas. ``if`` and
#: ``propertyNames`` are left alone: a connector name is matched as written, and keys are
#: never interpolated.
_SCHEMA = ("items", "additionalProperties", "then", "else", "not")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")


def config_schema() -> dict[str, Any]:
    """The JSON Schema of a config file, with the options of every installed connector."""
    options = _connector_options()
    classes: list[type[BaseModel]] = [ConfigModel, *dict.fromkeys(options.values())]
    refs, document = models_json_schema(
        [(cls, "validation") for cls in classes],
        ref_template="#/definitions/{model}",
        schema_generator=_Generator,
    )
    defs: dict[str, Any] = document["$defs"]
    top = defs.pop(_ref_name(refs[ConfigModel, "validation"]))
    branches = [
        {
            "if": {"properties": {"connector": {"const": name}}, "required": ["connector"]},
            "then": {"properties": {"options": refs[cls, "validation"]}},
        }
        for name, cls in options.items()
    ]
    for block in ("CanonicalConfig", "ChannelConfig"):
        properties = defs[block]["properties"]
        properties["connector"] = {
            **properties["connector"],
            "description": "An installed connector (`omnisync connectors` lists them).",
            "enum": sorted(options),
        }
        properties["options"]["description"] = "The options of the connector named above."
        defs[block]["allOf"] = branches
    schema = {
        "$schema": DIALECT,
        "title": "omnisync configuration",
        **{key: value for key, value in top.items() if key != "title"},
        "definitions": dict(sorted(defs.items())),
    }
    schema = _interpolable(schema)
    schema["definitions"]["Interpolated"] = INTERPOLATED  # after: it must not refer to itself
    return schema


def schema_text() -> str:
    """:func:`config_schema` as the file ``omnisync schema`` writes: stable, diffable JSON."""
    return json.dumps(config_schema(), indent=2, ensure_ascii=False) + "\n"


def _connector_options() -> dict[str, type[ConnectorOptions]]:
    """The options model of each installed connector, by connector name; a connector that
    cannot be loaded is left out (its options stay free-form), with a warning."""
    found = {}
    for name in sorted(sdk.available_connectors()):
        try:
            found[name] = sdk.load_connector(name).Options
        except UnknownConnectorError as exc:
            log.warning("%s; its options are not in the schema", exc.message)
    return found


def _ref_name(ref: JsonSchemaValue) -> str:
    return str(ref["$ref"]).rsplit("/", 1)[-1]


class _Generator(GenerateJsonSchema):
    """Pydantic's generator, with each field's ``#:`` comment as its description."""

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        docs = field_docs(schema["cls"]) if isinstance(schema["cls"], type) else {}
        blocks = [json_schema, *json_schema.get("anyOf", ())]  # a model with a shorthand
        for block in blocks:
            for name, prop in block.get("properties", {}).items():
                if name in docs and "description" not in prop:
                    prop["description"] = docs[name]
        return json_schema


_COMMENT = re.compile(r"^\s*#:\s?(.*)$")
_FIELD = re.compile(r"^\s*(\w+)\s*:")


def field_docs(cls: type) -> dict[str, str]:
    """The ``#:`` comments right above the fields of ``cls`` and its bases, by field name."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not issubclass(klass, BaseModel) or klass is BaseModel:
            continue
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        comment: list[str] = []
        for line in lines:
            if match := _COMMENT.match(line):
                comment.append(match.group(1).strip())
                continue
            field = _FIELD.match(line)
            if comment and field:
                docs[field.group(1)] = " ".join(comment)
            comment = []
    return docs


def _interpolable(node: Any) -> Any:
    """``node`` (a schema) with each value that a ``${...}`` string could not satisfy also
    accepting one (:data:`INTERPOLATED`)."""
    if not isinstance(node, dict):
        return node
    out = dict(node)
    for key in _SCHEMA:
        if isinstance(out.get(key), dict):
            out[key] = _interpolable(out[key])
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: _interpolable(sub) for name, sub in out[key].items()}
    if "anyOf" in out:
        branches = out["anyOf"]
        if any(_takes_any_string(b) for b in branches):
            out["anyOf"] = [_interpolable_inside(b) for b in branches]
        else:
            out["anyOf"] = [*(_interpolable_inside(b) for b in branches), _REF]
        return out
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_interpolable(sub) for sub in out[key]]
    if _is_scalar(out) and not _takes_any_string(out):
        constraint = {k: v for k, v in out.items() if k not in _METADATA}
        meta = {k: v for k, v in out.items() if k in _METADATA}
        return {"anyOf": [constraint, _REF], **meta}
    return out


_REF = {"$ref": "#/definitions/Interpolated"}


def _interpolable_inside(branch: Any) -> Any:
    """A branch of an ``anyOf`` that gets (or needs) no reference alternative of its own:
    only what it contains is made interpolable."""
    if isinstance(branch, dict) and _is_scalar(branch):
        return branch
    return _interpolable(branch)


def _is_scalar(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind}
    if kinds & {"object", "array"}:
        return False
    return "enum" in node or "const" in node or bool(kinds - {None})


def _takes_any_string(node: Any) -> bool:
    """Whether ``node`` accepts every string (so a ``${...}`` string needs nothing more)."""
    if not isinstance(node, dict) or node.get("type") != "string":
        return False
    constraints = set(node) - set(_METADATA) - {"type"}
    return not constraints
