"""Config loading: every problem at once, located by file:line and dotted key."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnisync import secrets
from omnisync.config import load_config
from omnisync.errors import ConfigError, UsageError

ROOT = Path(__file__).resolve().parents[1]

BASE = """\
version: 1
canonical:
  connector: csv
  options:
    path: erp.csv
    mapping: {sku: sku, title: title, price: price}
channels:
  shop:
    connector: csv
    options:
      path: shop.csv
      mapping: {sku: sku, title: title, price: price}
    expect:
      price:
        vat: 19
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "omnisync.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return [str(p) for p in info.value.problems]


def test_shipped_example_is_valid() -> None:
    config = load_config(ROOT / "config.example.yaml")
    assert list(config.channels) == [
        "webshop",
        "shopify",
        "webshop-api",
        "shopware",
        "magento",
        "pos",
        "pos-db",
        "medusa",
        "vendure",
        "google",
        "catalogue-print",
        "google-xml",
        "idealo",
        "catalogue-export",
    ]
    assert config.model.settings.timezone == "Europe/Berlin"
    assert len(config.fingerprint) == 64


def test_the_examples_placeholder_secrets_are_not_words() -> None:
    """A secret is masked wherever it appears: a placeholder like ``unset`` would turn the
    hint 'unset OMNISYNC_MEMORY_LIMIT' into '*** OMNISYNC_MEMORY_LIMIT' for every user."""
    secrets.forget_all()
    load_config(ROOT / "config.example.yaml")
    for word in ("unset", "default", "token", "secret", "password", "admin", "shop"):
        assert secrets.mask(f"or {word} it") == f"or {word} it"


def test_minimal_config_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE))
    assert config.channel_config("shop").expect.price.vat == 19
    assert config.base_dir == tmp_path.resolve()


def test_typo_is_an_error_with_line_key_and_allowed_keys(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, BASE.replace("        vat: 19", "        vatt: 19"))
    assert problem.startswith(
        f"{tmp_path / 'omnisync.yaml'}:15: channels.shop.expect.price.vatt: unknown key 'vatt'"
    )
    assert "vat" in problem.split("allowed here:")[1]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        BASE.replace("        vat: 19", "        vat: lots\n        rounding: {mode: step}")
        + "  other:\n    connector: nosuch\n"
    )
    found = problems(tmp_path, text)
    joined = "\n".join(found)
    assert "channels.shop.expect.price.vat" in joined
    assert "mode 'step' needs `step`" in joined
    assert "channels.other.connector: unknown connector 'nosuch'" in joined
    assert "installed connectors: csv" in joined
    assert len(found) == 3


def test_connector_options_are_validated_with_their_path(tmp_path: Path) -> None:
    (problem,) = problems(
        tmp_path,
        BASE.replace("      path: shop.csv", "      pathh: shop.csv\n      path: shop.csv"),
    )
    assert ":11: channels.shop.options.pathh: unknown key" in problem


def test_missing_env_var_names_variable_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMNISYNC_TEST_PATH", raising=False)
    (problem,) = problems(tmp_path, BASE.replace("path: shop.csv", "path: ${OMNISYNC_TEST_PATH}"))
    assert (
        ":11: channels.shop.options.path: environment variable OMNISYNC_TEST_PATH is not set"
        in problem
    )


def test_env_and_file_values_are_substituted_and_only_secret_fields_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A path is no secret, wherever it comes from (tests/test_secrets.py has the rest)."""
    secrets.forget_all()
    monkeypatch.setenv("OMNISYNC_TEST_FILE", "shop-from-env.csv")
    (tmp_path / "token.txt").write_text("tok-5ecr3t\n")
    text = BASE.replace("path: shop.csv", "path: ${OMNISYNC_TEST_FILE}").replace(
        "path: erp.csv", "path: ${file:token.txt}.csv"
    )
    config = load_config(write(tmp_path, text))
    assert config.channels["shop"].options.path == "shop-from-env.csv"  # type: ignore[attr-defined]
    assert config.canonical.options.path == "tok-5ecr3t.csv"  # type: ignore[attr-defined]
    assert secrets.mask("read tok-5ecr3t.csv") == "read tok-5ecr3t.csv"
    secrets.forget_all()


def test_env_default_applies_when_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_X", raising=False)
    config = load_config(write(tmp_path, BASE.replace("shop.csv", "${NOPE_X:-fallback.csv}")))
    assert config.channels["shop"].options.path == "fallback.csv"  # type: ignore[attr-defined]


def test_invalid_yaml_points_at_the_line(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, BASE.replace("    expect:", "    expect: [oops"))
    assert "not valid YAML" in problem
    assert "omnisync.yaml:" in problem


def test_duplicate_key(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, BASE + "  shop:\n    connector: csv\n")
    assert "duplicate key 'shop'" in problem


def test_checked_field_must_be_provided(tmp_path: Path) -> None:
    (problem,) = problems(
        tmp_path, BASE.replace("    expect:\n", "    expect:\n      check: [title, stock]\n")
    )
    assert (
        "channels.shop.expect.check[1]: field 'stock' is not provided by this channel's mapping"
        in problem
    )


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        ("        rounding: {mode: step, step: 0.03}", "must divide 1 evenly"),
        ("        currency: EURO", "not an ISO 4217 currency code"),
        ("        rate: 0.9", "a conversion `rate` needs a target `currency`"),
    ],
)
def test_price_rule_errors(tmp_path: Path, fragment: str, message: str) -> None:
    (problem,) = problems(tmp_path, BASE + fragment + "\n")
    assert message in problem


def test_missing_file_and_unknown_timezone(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    (problem,) = problems(
        tmp_path, "settings:\n  timezone: Mars/Olympus\n" + BASE.replace("version: 1\n", "")
    )
    assert "unknown time zone 'Mars/Olympus'" in problem


def test_memory_limit_defaults_to_1gb_and_is_validated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omnisync.check import _memory_limit

    config = load_config(write(tmp_path, BASE))
    assert config.model.settings.memory_limit == "1GB"
    monkeypatch.setenv("OMNISYNC_MEMORY_LIMIT", "4GB")
    assert _memory_limit(config) == "4GB"
    monkeypatch.setenv("OMNISYNC_MEMORY_LIMIT", "lots")
    with pytest.raises(UsageError, match="OMNISYNC_MEMORY_LIMIT='lots'"):
        _memory_limit(config)
    (problem,) = problems(
        tmp_path, "settings:\n  memory_limit: 2 gigs\n" + BASE.replace("version: 1\n", "")
    )
    assert "'2 gigs' is not an amount of memory" in problem
    unlimited = load_config(
        write(tmp_path, "settings:\n  memory_limit: null\n" + BASE.replace("version: 1\n", ""))
    )
    assert unlimited.model.settings.memory_limit is None
