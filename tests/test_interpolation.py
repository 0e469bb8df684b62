"""``${...}`` in the config: nested defaults resolve, and a malformed reference is an error at
``validate`` (key and file:line), never a literal ``${B`` that later becomes a folder name."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnisync.config import load_config
from omnisync.errors import ConfigError

CONFIG = """\
settings:
  state: "{state}"
canonical:
  connector: csv
  options:
    path: erp.csv
    mapping: {{sku: sku, title: title, price: price}}
channels:
  shop:
    connector: csv
    options:
      path: shop.csv
      mapping: {{sku: sku, title: title, price: price}}
"""


@pytest.fixture(autouse=True)
def _unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OMNI_A", "OMNI_B", "OMNI_C"):
        monkeypatch.delenv(name, raising=False)


def state_of(tmp_path: Path, state: str) -> str:
    path = tmp_path / "omnisync.yaml"
    path.write_text(CONFIG.format(state=state), encoding="utf-8")
    return load_config(path).model.settings.state


def problems(tmp_path: Path, state: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        state_of(tmp_path, state)
    return [str(p) for p in info.value.problems]


def test_a_nested_default_takes_the_first_variable_that_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nested = "${OMNI_A:-${OMNI_B}}/state.db"
    monkeypatch.setenv("OMNI_B", "from-b")
    assert state_of(tmp_path, nested) == "from-b/state.db"
    monkeypatch.setenv("OMNI_A", "from-a")
    assert state_of(tmp_path, nested) == "from-a/state.db"


def test_nested_defaults_go_any_depth_and_mix_with_text(tmp_path: Path) -> None:
    value = "${OMNI_A:-${OMNI_B:-${OMNI_C:-deep}}}"
    assert state_of(tmp_path, value) == "deep"
    assert state_of(tmp_path, "s-${OMNI_A:-pre-${OMNI_B:-x}-post}.db") == "s-pre-x-post.db"
    assert state_of(tmp_path, "${OMNI_A:-}plain") == "plain"


def test_a_nested_default_with_nothing_set_names_the_variable_and_the_key(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, "${OMNI_A:-${OMNI_B}}/state.db")
    assert problem.endswith(
        "omnisync.yaml:2: settings.state: environment variable OMNI_B is not set"
    )


def test_an_unclosed_reference_is_an_error_at_validate(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, "${OMNI_A:-${OMNI_B}/state.db")
    assert "omnisync.yaml:2: settings.state:" in problem
    assert "no closing brace" in problem
    assert not any(p.name.startswith("$") for p in tmp_path.iterdir())
