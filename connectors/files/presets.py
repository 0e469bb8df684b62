"""The known export layouts (``preset: NAME`` of the csv, tsv and xml connectors), shipped in
presets.yaml: candidate columns per mapping key, option defaults, the grouping column, which
rows are containers rather than records, and which values mean blank.

A preset is merged into the options as written (:func:`apply_preset`), before validation; once
a file's header is known, :meth:`Preset.resolve` matches its candidate columns to it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

from omnisync.sdk.mapping import FieldMapping


@dataclass(frozen=True)
class Preset:
    """A known export layout: candidate columns per mapping key, and how to read its rows."""

    name: str
    description: str
    options: Mapping[str, Any]
    group_by: tuple[str, ...]
    required: frozenset[str]
    #: key -> candidate columns, or key -> {name: candidate columns} for ids/stock/attributes.
    mapping: Mapping[str, Any]
    skip: Mapping[str, frozenset[str]]
    blank: Mapping[str, frozenset[str]]

    def default_mapping(self) -> dict[str, Any]:
        """The mapping with each key's first candidate column."""
        return {
            key: {name: columns[0] for name, columns in value.items()}
            if isinstance(value, dict)
            else value[0]
            for key, value in self.mapping.items()
        }

    def resolve(self, mapping: FieldMapping, header: list[str]) -> FieldMapping:
        """``mapping`` with the preset's columns matched to ``header``: another candidate where
        the first is absent, optional keys dropped where none is present. Keys the user mapped
        to other columns are left alone."""
        present = set(header)
        data = mapping.model_dump(exclude_none=True)
        for key, candidates in self.mapping.items():
            value = data.get(key)
            if isinstance(candidates, dict) and isinstance(value, dict):
                for name, columns in candidates.items():
                    if value.get(name) == columns[0]:
                        self._pick(value, name, columns, present, optional=True)
                if not value and key != "ids":
                    del data[key]
            elif isinstance(candidates, list) and value == candidates[0]:
                self._pick(data, key, candidates, present, optional=key not in self.required)
        return FieldMapping.model_validate(data)

    @staticmethod
    def _pick(
        data: dict[str, Any], key: str, columns: list[str], present: set[str], optional: bool
    ) -> None:
        found = next((column for column in columns if column in present), None)
        if found is not None:
            data[key] = found
        elif optional:
            del data[key]

    def group_column(self, configured: str | None, header: list[str]) -> str | None:
        if self.group_by and configured == self.group_by[0]:
            return next((c for c in self.group_by if c in header), configured)
        return configured


@cache
def presets() -> dict[str, Preset]:
    """The presets shipped in presets.yaml, by name."""
    text = files(__package__).joinpath("presets.yaml").read_text(encoding="utf-8")
    return {
        name: Preset(
            name=name,
            description=spec["description"],
            options=spec.get("options", {}),
            group_by=tuple(spec.get("group_by", ())),
            required=frozenset(spec.get("required", ("sku",))),
            mapping=spec["mapping"],
            skip={column: frozenset(values) for column, values in spec.get("skip", {}).items()},
            blank={column: frozenset(values) for column, values in spec.get("blank", {}).items()},
        )
        for name, spec in yaml.safe_load(text).items()
    }


def _known_presets() -> str:
    return ", ".join(sorted(presets()))


def apply_preset(data: Any, fields: Collection[str]) -> Any:
    """Options as written (before validation) with the named preset's under them: its option
    defaults that the connector has (``fields``; a TSV delimiter means nothing in XML), its
    grouping column and its mapping, with the user's settings and mapped keys winning.

    Merged before validation, so that mapping errors keep their dotted location and a partial
    user mapping (``{price: Preis}``) is valid on top of a preset."""
    name = data.get("preset") if isinstance(data, dict) else None
    if not isinstance(name, str) or name not in presets():
        return data  # no preset, or an unknown one that known_preset reports
    preset = presets()[name]
    merged = {**{k: v for k, v in preset.options.items() if k in fields}, **data}
    if preset.group_by and "group_by" in fields:
        merged.setdefault("group_by", preset.group_by[0])
    user = data.get("mapping")
    if user is None or isinstance(user, dict):
        merged["mapping"] = {**preset.default_mapping(), **(user or {})}
    return merged


def preset_json_schema(schema: dict[str, Any], cls: type) -> None:
    """JSON Schema of options with a ``preset:`` (``omnisync schema``): the shipped presets
    to choose from, and a mapping that is required (with its ``sku``) only without one."""
    schema["properties"]["preset"]["anyOf"] = [
        {"enum": sorted(presets()), "type": "string"},
        {"type": "null"},
    ]
    schema["required"] = [key for key in schema.get("required", []) if key != "mapping"]
    if not schema["required"]:
        del schema["required"]
    schema.setdefault("allOf", []).append(
        {
            "if": {"required": ["preset"], "properties": {"preset": {"type": "string"}}},
            "else": {"required": ["mapping"], "properties": {"mapping": {"required": ["sku"]}}},
        }
    )


def known_preset(value: str | None) -> str | None:
    """``value`` when it names a shipped preset (or is unset), else the error listing them."""
    if value is not None and value not in presets():
        raise ValueError(f"unknown preset {value!r}; known presets: {_known_presets()}")
    return value


def preset_named(name: str | None) -> Preset | None:
    return presets()[name] if name else None
