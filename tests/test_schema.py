"""The config's JSON Schema (`omnisync schema`): what an editor completes and flags must agree
with what `omnisync validate` accepts and refuses."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from omnisync.cli import app
from omnisync.config import json_schema as config_json_schema
from omnisync.config import load_config
from omnisync.config.reading import load_with_lines
from omnisync.errors import ConfigError
from omnisync.models import Field, Record
from omnisync.sdk import connector as sdk_connector
from omnisync.sdk.connector import Capabilities, Connector, ConnectorOptions

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "omnisync.schema.json"
EXAMPLE = ROOT / "config.example.yaml"
#: Every config shipped in the repository: the example, and the YAML under tests/data and
#: examples.
SHIPPED = sorted(
    [
        EXAMPLE,
        *(p for folder in ("tests/data", "examples") for p in (ROOT / folder).rglob("*.y*ml")),
    ]
)
#: What tests/data/configs/interpolated.yaml reads without a default.
INTERPOLATED_ENV = {
    "PRICE_DB": "sqlite:///prices.db",
    "SHOP_URL": "https://shop.example.com",
    "SHOPIFY_TOKEN": "shpat_test",
}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = config_json_schema.config_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _as_editor_sees(path: Path) -> Any:
    """The file's data as written (``${...}`` not replaced), read as omnisync reads YAML."""
    data, _ = load_with_lines(path.read_text(encoding="utf-8"), str(path))
    return data


def _problems(validator: jsonschema.Draft7Validator, data: Any) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in validator.iter_errors(data)
    ]


def test_the_committed_schema_is_what_the_command_prints() -> None:
    result = CliRunner().invoke(app, ["schema"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout == SCHEMA_FILE.read_text(encoding="utf-8"), (
        "omnisync.schema.json is stale: run `omnisync schema > omnisync.schema.json`"
    )


def test_the_example_config_names_the_shipped_schema() -> None:
    first = EXAMPLE.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=omnisync.schema.json"
    assert (EXAMPLE.parent / "omnisync.schema.json").is_file()


def test_there_are_shipped_configs_besides_the_example() -> None:
    assert len(SHIPPED) > 1, SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_config_validates(
    path: Path, validator: jsonschema.Draft7Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _problems(validator, _as_editor_sees(path)) == []
    for name, value in INTERPOLATED_ENV.items():
        monkeypatch.setenv(name, value)
    load_config(path)  # and omnisync agrees


def test_references_stand_where_numbers_booleans_and_words_are_wanted(
    validator: jsonschema.Draft7Validator,
) -> None:
    data = _as_editor_sees(ROOT / "tests/data/configs/interpolated.yaml")
    shop = data["channels"]["shop"]
    assert shop["options"]["page_size"] == "${PAGE_SIZE:-100}"
    assert shop["push"]["guard"]["max_records"] == "${MAX_RECORDS:-200}"
    assert _problems(validator, data) == []
    # ... but a string that is no reference is still wrong there.
    shop["options"]["page_size"] = "a hundred"
    shop["push"]["guard"]["max_records"] = "PAGE_SIZE"
    assert sorted(_problems(validator, data)) == [
        "channels.shop.options.page_size: 'a hundred' is not valid under any of the given schemas",
        "channels.shop.push: {'fields': ['price', 'stock'], 'guard': {'max_records': 'PAGE_SIZE', "
        "'max_records_pct': '${MAX_RECORDS_PCT:-10}'}} is not valid under any of the given schemas",
    ]


def _channel(data: dict[str, Any], connector: str) -> dict[str, Any]:
    return next(c for c in data["channels"].values() if c["connector"] == connector)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        block = data
        for key in parents:
            block = block[key]
        block[last] = value

    return change


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        block = data
        for key in parents:
            block = block[key]
        del block[last]

    return change


def _option(connector: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        _channel(data, connector)["options"][key] = value

    return change


#: Mistakes in the example config: each fails the schema at this path, and `omnisync validate`.
MISTAKES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "typo at the top": (_set("chanels", {}), ""),
    "typo in settings": (_set("settings.timezon", "UTC"), "settings"),
    "typo in a guard": (_set("canonical.guard.min_ration", 0.5), "canonical.guard"),
    "typo in csv options": (_set("canonical.options.delimter", ";"), "canonical.options"),
    "typo in shopify options": (_option("shopify", "tokn", "x"), "channels.shopify.options"),
    "typo in sql options": (_option("sql", "querry", "SELECT 1"), "channels.pos-db.options"),
    "csv option on shopify": (_option("shopify", "delimiter", ";"), "channels.shopify.options"),
    "wrong type: integer": (
        _option("shopify", "page_size", "many"),
        "channels.shopify.options.page_size",
    ),
    "wrong type: boolean": (
        _option("csv", "backup", "sometimes"),
        "channels.webshop.options.backup",
    ),
    "unknown word": (_set("canonical.prices", "netto"), "canonical.prices"),
    "unknown connector": (_set("canonical.connector", "cvs"), "canonical.connector"),
    "unknown preset": (_option("csv", "preset", "magento"), "channels.webshop.options.preset"),
    "mapping without sku": (_drop("canonical.options.mapping.sku"), "canonical.options.mapping"),
    "csv without mapping": (_drop("canonical.options.mapping"), "canonical.options"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_mistake_fails_the_schema_and_omnisync(
    mistake: str, validator: jsonschema.Draft7Validator, tmp_path: Path
) -> None:
    change, where = MISTAKES[mistake]
    data = _as_editor_sees(EXAMPLE)
    assert _problems(validator, data) == []
    wrong = copy.deepcopy(data)
    change(wrong)
    problems = _problems(validator, wrong)
    assert problems, f"the schema accepts: {mistake}"
    assert {p.split(": ", 1)[0] for p in problems} == {where}, problems
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    config = tmp_path / "omnisync.yaml"
    config.write_text(yaml.safe_dump(wrong, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(config)


def _options_schema(schema: dict[str, Any], connector: str) -> dict[str, Any]:
    """The options model the schema applies when ``connector:`` names ``connector``."""
    channel = schema["definitions"]["ChannelConfig"]
    branch = next(
        b for b in channel["allOf"] if b["if"]["properties"]["connector"]["const"] == connector
    )
    ref = branch["then"]["properties"]["options"]["$ref"]
    found: dict[str, Any] = schema["definitions"][ref.rsplit("/", 1)[-1]]
    return found


def test_the_options_of_each_connector_are_in_the_schema() -> None:
    schema = config_json_schema.config_schema()
    wanted = {
        "shopify": {"url", "token", "api_version", "page_size", "locations"},
        "sql": {"url", "table", "query", "mapping", "write", "outbox"},
        "csv": {"path", "delimiter", "encoding", "preset", "mapping", "decimal"},
        "woocommerce": {"url", "consumer_key", "consumer_secret"},
    }
    for connector, keys in wanted.items():
        properties = _options_schema(schema, connector)["properties"]
        assert keys <= set(properties), (connector, keys - set(properties))
    # The `#:` comment above a field is its hover help.
    csv = _options_schema(schema, "csv")["properties"]
    assert csv["path"]["description"].startswith("The file to read")


class GreenhouseOptions(ConnectorOptions):
    """A third-party connector's options."""

    #: The greenhouse's plant register.
    register_url: str
    beds: int = 3


class GreenhouseConnector(Connector[GreenhouseOptions]):
    """A connector a third-party package would register."""

    description = "Plants"
    Options = GreenhouseOptions
    capabilities = Capabilities(reads=frozenset(), writes=frozenset())

    def fields(self) -> frozenset[Field]:
        return frozenset()

    def read(self) -> Iterator[Record]:
        return iter(())


def test_a_plugin_connector_completes_too(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = sdk_connector.available_connectors()
    entry = EntryPoint(
        "greenhouse", f"{__name__}:GreenhouseConnector", sdk_connector.ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(
        sdk_connector, "available_connectors", lambda: {**installed, "greenhouse": entry}
    )
    schema = config_json_schema.config_schema()
    options = _options_schema(schema, "greenhouse")
    assert set(options["properties"]) == {"register_url", "beds"}
    assert options["required"] == ["register_url"]
    assert (
        options["properties"]["register_url"]["description"] == "The greenhouse's plant register."
    )
    connectors = schema["definitions"]["ChannelConfig"]["properties"]["connector"]["anyOf"][0]
    assert "greenhouse" in connectors["enum"]
    validator = jsonschema.Draft7Validator(schema)
    data = _as_editor_sees(EXAMPLE)
    data["channels"]["plants"] = {"connector": "greenhouse", "options": {"beds": 4}}
    assert _problems(validator, data) == [
        "channels.plants.options: 'register_url' is a required property"
    ]
