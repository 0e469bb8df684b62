"""The connector author's kit: its public surface is pinned, it is cheap to import, and the
README's complete example connector passes the contract and a check → sync → check loop."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from typer.testing import CliRunner

import omnisync.sdk
import omnisync.sdk.connector as sdk_connector
from omnisync.cli import app
from omnisync.sdk import Connector, ConnectorContext, ConnectorContract

ROOT = Path(__file__).resolve().parents[1]

PUBLIC = [
    "AuthError",
    "Availability",
    "BatchWriter",
    "Capabilities",
    "Change",
    "ChangeFeed",
    "ChangeRejected",
    "Connector",
    "ConnectorContext",
    "ConnectorContract",
    "ConnectorError",
    "ConnectorOptions",
    "Entity",
    "FeedBatch",
    "Field",
    "FieldMapping",
    "HttpClient",
    "HttpConnector",
    "HttpError",
    "HttpOptions",
    "InputError",
    "Money",
    "Op",
    "ParseOptions",
    "Prepared",
    "Problem",
    "PullState",
    "QualityNote",
    "Record",
    "Retry",
    "RowMapper",
    "SnapshotFeed",
    "TableTarget",
    "TransientError",
    "UnreachableError",
    "UpdateLimit",
    "WriteResult",
    "incremental_read",
]


def test_the_public_surface_is_pinned_and_every_name_resolves() -> None:
    # Adding a name is a decision (it becomes API); removing one breaks plugins.
    assert omnisync.sdk.__all__ == PUBLIC == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(omnisync.sdk, name) is not None, name
    assert dir(omnisync.sdk) == PUBLIC
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = omnisync.sdk.Nope  # type: ignore[attr-defined]


def test_importing_the_kit_does_not_import_the_http_stack() -> None:
    code = (
        "import sys; from omnisync.sdk import Connector, Record, Field; "
        "print('httpx' in sys.modules, 'duckdb' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


def test_the_core_top_level_lists_pipeline_stages_only() -> None:
    kit = {"connector", "http", "retry", "incremental", "values", "mapping", "columnar", "testing"}
    top = {p.stem for p in (ROOT / "omnisync").glob("*.py")}
    assert not kit & top, f"kit modules outside omnisync/sdk/: {sorted(kit & top)}"


# -- the README's example connector ---------------------------------------------------------


def _example() -> types.ModuleType:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- example: connector -->\n```python\n(.*?)```", readme, re.S)
    assert match, "the README's example connector block is missing"
    module = types.ModuleType("readme_connector")
    sys.modules[module.__name__] = module
    exec(compile(match.group(1), "README.md:example", "exec"), module.__dict__)
    return module


EXAMPLE = _example()
CATALOGUE = {
    "TS-1": {"title": "Tee", "price": "19.90", "stock": 3},
    "CAP-1": {"title": "Cap", "price": "9.90", "stock": 0},
}


def _notebook(folder: Path) -> Connector:
    (folder / "shop.json").write_text(json.dumps(CATALOGUE), encoding="utf-8")
    cls = EXAMPLE.NotebookConnector
    return cls(cls.Options.model_validate({"path": "shop.json"}), ConnectorContext("shop", folder))  # type: ignore[no-any-return]


class TestReadmeConnector(ConnectorContract):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Connector:
        return _notebook(tmp_path)


def test_the_example_connector_converges_through_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = sdk_connector.available_connectors()
    entry = EntryPoint("notebook", "readme_connector:NotebookConnector", "omnisync.connectors")
    monkeypatch.setattr(
        sdk_connector, "available_connectors", lambda: {**installed, "notebook": entry}
    )
    _notebook(tmp_path)
    (tmp_path / "erp.csv").write_text(
        "sku,title,price,stock\nTS-1,Tee,21.90,3\nCAP-1,Wool cap,9.90,4\n", encoding="utf-8"
    )
    config = tmp_path / "omnisync.yaml"
    config.write_text(
        """\
settings: {state: state.db}
canonical:
  connector: csv
  options:
    path: erp.csv
    currency: EUR
    mapping: {sku: sku, title: title, price: price, stock: stock}
channels:
  shop:
    connector: notebook
    options: {path: shop.json}
    push:
      fields: [title, price, stock]
      guard: {max_records_pct: 100, max_price_change_pct: 50}
""",
        encoding="utf-8",
    )
    runner = CliRunner()
    assert runner.invoke(app, ["check", "-c", str(config)]).exit_code == 1
    synced = runner.invoke(app, ["sync", "-c", str(config)])
    assert synced.exit_code == 0, synced.stdout + synced.stderr
    assert json.loads((tmp_path / "shop.json").read_text(encoding="utf-8")) == {
        "TS-1": {"title": "Tee", "price": "21.90", "stock": 3},
        "CAP-1": {"title": "Wool cap", "price": "9.90", "stock": 4},
    }
    again = runner.invoke(app, ["check", "-c", str(config)])
    assert again.exit_code == 0, again.stdout


# -- the one write routine -------------------------------------------------------------------


class _Fake(omnisync.sdk.BatchWriter[list[int]]):
    """Two changes per request; ``broken`` requests raise, ``refuse`` indexes are refused."""

    def __init__(self, broken: set[int] = frozenset(), refuse: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.broken, self.refuse, self.sent, self.settled = broken, refuse, [], False

    def prepare(self, changes):  # type: ignore[no-untyped-def]
        wanted = [i for i in range(len(changes)) if i not in self.refuse]
        requests = [wanted[i : i + 2] for i in range(0, len(wanted), 2)]
        return omnisync.sdk.Prepared(requests, dict.fromkeys(self.refuse, "no such SKU"))

    def covers(self, request):  # type: ignore[no-untyped-def]
        return request

    def show(self, request):  # type: ignore[no-untyped-def]
        return [{"items": request}]

    def send(self, request):  # type: ignore[no-untyped-def]
        if len(self.sent) in self.broken:
            raise omnisync.sdk.TransientError("shop down")
        self.sent.append(request)
        return {i: ("too long" if i == 1 else None) for i in request}

    def settle(self, changes, failed):  # type: ignore[no-untyped-def]
        self.settled = True


def _changes(n: int) -> list[omnisync.sdk.Change]:
    return [omnisync.sdk.Change("shop", f"S{i}", field="title", after="x") for i in range(n)]


def test_the_write_routine_answers_once_per_change_in_order() -> None:
    writer = _Fake(refuse={4})
    results = writer.write(_changes(5))
    assert [(r.key, r.ok, r.error) for r in results] == [
        ("S0:title", True, None),
        ("S1:title", False, "too long"),
        ("S2:title", True, None),
        ("S3:title", True, None),
        ("S4:title", False, "no such SKU"),
    ]
    assert writer.sent == [[0, 1], [2, 3]]
    assert writer.settled


def test_nothing_sent_reraises_and_a_later_failure_fails_the_rest() -> None:
    with pytest.raises(omnisync.sdk.TransientError):
        _Fake(broken={0}).write(_changes(4))  # the channel failed, not these changes
    results = _Fake(broken={1}).write(_changes(6))
    assert [r.ok for r in results] == [True, False, False, False, False, False]
    assert [r.error for r in results][2:] == ["shop down"] * 4


def test_previews_have_one_shape_and_send_nothing() -> None:
    writer = _Fake(refuse={0})
    assert writer.preview(_changes(3)) == [
        {"send": {"items": [1, 2]}},
        {"key": "S0:title", "refused": "no such SKU"},
    ]
    assert writer.sent == []
