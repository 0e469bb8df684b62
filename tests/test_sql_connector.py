"""The sql connector against real PostgreSQL, MariaDB and SQLite (see conftest.py)."""

from __future__ import annotations

import gc
import subprocess
import sys
import warnings
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from pydantic import ValidationError

from omnisync import secrets
from omnisync.errors import (
    AuthError,
    ConnectorError,
    ExitCode,
    InputError,
    TransientError,
    UnreachableError,
)
from omnisync.models import Change, Entity, Field, Money, Op, Record
from omnisync.sdk.connector import Connector, ConnectorContext, load_connector
from omnisync.sdk.testing import ConnectorContract
from omnisync.sdk.values import record_to_json
from omnisync_connectors.sql.connector import SqlConnector
from omnisync_connectors.sql.load import split_statements
from tests.databases import MYSQL_URL, PG_URL, TestDatabase, unreachable

ROOT = Path(__file__).resolve().parents[1]
POS_SCHEMA = ROOT / "examples" / "pos_schema.sql"
D = Decimal
EUR = "EUR"
PASSWORD = "s3cret-Pw0rd"

# The `pos-db` channel of config.example.yaml (its options block, verbatim).
POS_DB_CHANNEL = """
pos-db:
  connector: sql
  options:
    url: ${POS_DB_URL:-sqlite:///examples/pos.db}
    query: |
      SELECT a.id, a.sku, a.name, a.ean, v.percent AS vat_percent,
             p.amount_cents, p.currency, s.code AS store, k.qty
      FROM articles a
      JOIN vat_rates v ON v.code = a.vat_code
      JOIN prices p ON p.article_id = a.id AND p.currency = 'EUR'
      LEFT JOIN stock k ON k.article_id = a.id
      LEFT JOIN stores s ON s.id = k.store_id
      ORDER BY a.sku, s.code
    price_unit: minor
    mapping:
      sku: sku
      title: name
      gtin: ean
      vat_rate: vat_percent
      price: amount_cents
      currency: currency
      ids: {article_id: id}
    stock_rows: {location: store, quantity: qty}
    batch_size: 1000
    max_batch: 500
    connect_timeout: 10
    write:
      price: >-
        UPDATE prices SET amount_cents = :price_cents
        WHERE article_id = :article_id AND currency = :currency
      stock: >-
        INSERT INTO stock (article_id, store_id, qty)
        SELECT a.id, s.id, :quantity FROM articles a, stores s
        WHERE a.sku = :sku AND s.code = :location
        ON CONFLICT (article_id, store_id) DO UPDATE SET qty = excluded.qty
"""

ARTICLES = """
CREATE TABLE items (
    sku VARCHAR(32) NOT NULL,
    title VARCHAR(100),
    price DECIMAL(10, 2),
    stock INTEGER
);
INSERT INTO items (sku, title, price, stock) VALUES
    ('A-1', 'Hemd', 19.99, 3),
    ('A-2', 'Hose', 49.90, 0),
    ('A-3', 'Jacke „Nord“', 129.00, 12);
"""
ITEM_MAPPING = {"sku": "sku", "title": "title", "price": "price", "stock": "stock"}


def pos_options(url: str) -> dict[str, Any]:
    """The example channel's options with ``url`` (and the stock upsert of its backend)."""
    options: dict[str, Any] = yaml.safe_load(POS_DB_CHANNEL)["pos-db"]["options"]
    options["url"] = url
    if sa.make_url(url).get_backend_name() in ("mysql", "mariadb"):
        options["write"]["stock"] = (
            "INSERT INTO stock (article_id, store_id, qty) "
            "SELECT a.id, s.id, :quantity FROM articles a, stores s "
            "WHERE a.sku = :sku AND s.code = :location "
            "ON DUPLICATE KEY UPDATE qty = VALUES(qty)"
        )
    return options


def make(url: str, name: str = "pos-db", base: Path | None = None, **options: Any) -> SqlConnector:
    validated = SqlConnector.Options.model_validate({"url": url, **options})
    return SqlConnector(validated, ConnectorContext(name=name, base_dir=base or Path.cwd()))


def items(database: TestDatabase, **options: Any) -> SqlConnector:
    database.run(ARTICLES)
    defaults: dict[str, Any] = {"table": "items", "currency": EUR, "mapping": ITEM_MAPPING}
    return make(database.url, **{**defaults, **options})


def pos(database: TestDatabase) -> SqlConnector:
    database.run(POS_SCHEMA.read_text(encoding="utf-8"))
    return make(database.url, **{k: v for k, v in pos_options(database.url).items() if k != "url"})


def by_sku(connector: Connector) -> dict[str, Record]:
    return {record.sku: record for record in connector.read()}


def input_error(connector: Connector) -> InputError:
    with pytest.raises(InputError) as caught:
        list(connector.read())
    return caught.value


def price_change(sku: str, amount: str, article_id: str, before: str = "1.00") -> Change:
    return Change(
        "pos-db",
        sku,
        Op.UPDATE,
        "price",
        before={"amount": before, "currency": EUR},
        after={"amount": amount, "currency": EUR},
        ids={"article_id": article_id},
    )


def stock_change(sku: str, location: str, quantity: int) -> Change:
    return Change("pos-db", sku, Op.UPDATE, "stock", location, before=0, after=quantity)


# -- contract ------------------------------------------------------------------------------


class TestSqlContract(ConnectorContract):
    @pytest.fixture
    def connector(self, database: TestDatabase) -> Connector:
        return pos(database)


def test_registered_under_the_name_sql() -> None:
    assert load_connector("sql") is SqlConnector


# -- reading -------------------------------------------------------------------------------


def test_a_table_reads_typed_values_exactly(database: TestDatabase) -> None:
    records = by_sku(items(database))
    assert set(records) == {"A-1", "A-2", "A-3"}
    assert records["A-1"].price == Money(D("19.99"), EUR)
    assert records["A-2"].price == Money(D("49.90"), EUR)
    assert records["A-3"].title == "Jacke „Nord“"
    assert records["A-3"].stock == {"default": 12}
    assert records["A-1"].origin == "table items row 1"


def test_example_query_joins_articles_prices_vat_and_stock_per_store(
    database: TestDatabase,
) -> None:
    connector = pos(database)
    records = by_sku(connector)
    assert sorted(records) == [f"KA-{n}" for n in range(1001, 1015)]
    first = records["KA-1001"]
    assert first.price == Money(D("49.99"), EUR)
    assert first.stock == {"berlin": 3, "hamburg": 2}
    assert first.gtin == "04006381333931"
    assert first.vat_rate == D(19)
    assert first.ids == {"article_id": "1"}
    assert records["KA-1004"].price == Money(D("1298.99"), EUR)
    assert records["KA-1005"].vat_rate == D(7)
    assert connector.fields() == {Field.TITLE, Field.GTIN, Field.PRICE, Field.STOCK}
    assert connector.capabilities.reads == {Entity.CONTENT, Entity.PRICE, Entity.STOCK}
    assert connector.capabilities.writes == {Entity.PRICE, Entity.STOCK}
    assert connector.capabilities.max_batch == 500


def test_example_schema_loads_into_sqlite_with_python_only(tmp_path: Path) -> None:
    """The documented command, then the documented channel: 14 articles, EUR, two stores."""
    target = tmp_path / "examples" / "pos.db"
    target.parent.mkdir()
    command = [sys.executable, "-m", "omnisync_connectors.sql.load", str(POS_SCHEMA), str(target)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "loaded" in done.stdout
    again = subprocess.run(command, capture_output=True, text=True, check=False)
    assert again.returncode != 0
    assert "--replace" in again.stdout + again.stderr

    options = pos_options("sqlite:///examples/pos.db")  # relative to the config's folder
    connector = make(options.pop("url"), base=tmp_path, **options)
    connector.check()
    records = list(connector.read())
    assert len(records) == 14
    assert {r.price.currency for r in records if r.price} == {EUR}
    assert all(set(r.stock or {}) == {"berlin", "hamburg"} for r in records)
    assert by_sku(connector)["KA-1013"].price == Money(D("19.99"), EUR)


def test_dates_and_gtins_typed_by_the_database_are_taken_as_they_are(
    database: TestDatabase,
) -> None:
    database.run(
        """
        CREATE TABLE offers (sku VARCHAR(10), ean BIGINT, price DECIMAL(10, 2),
            sale DECIMAL(10, 2), sale_from DATE, sale_to DATE);
        INSERT INTO offers VALUES ('A', 4006381333931, 29.99, 24.99, '2026-12-01', '2026-12-24');
        """
    )
    connector = make(
        database.url,
        table="offers",
        currency=EUR,
        mapping={
            "sku": "sku",
            "gtin": "ean",
            "price": "price",
            "sale_price": "sale",
            "sale_start": "sale_from",
            "sale_end": "sale_to",
        },
    )
    [record] = connector.read()
    assert record.gtin == "04006381333931"
    assert record.sale_price == Money(D("24.99"), EUR)
    assert record.sale_start == datetime(2026, 12, 1)
    assert record.sale_end == datetime(2026, 12, 24, 23, 59, 59)  # through that day


def test_price_in_minor_units_follows_the_currency(sqlite_database: TestDatabase) -> None:
    sqlite_database.run(
        "CREATE TABLE p (sku TEXT, cents INTEGER, cur TEXT);"
        "INSERT INTO p VALUES ('A', 1999, 'EUR'), ('B', 1500, 'JPY'), ('C', 12345, 'KWD')"
    )
    connector = make(
        sqlite_database.url,
        table="p",
        price_unit="minor",
        mapping={"sku": "sku", "price": "cents", "currency": "cur"},
    )
    records = by_sku(connector)
    assert records["A"].price == Money(D("19.99"), EUR)
    assert records["B"].price == Money(D(1500), "JPY")
    assert records["C"].price == Money(D("12.345"), "KWD")


def test_minor_units_need_a_currency() -> None:
    with pytest.raises(ValidationError, match="price_unit: minor needs the currency"):
        make("sqlite://", table="p", price_unit="minor", mapping={"sku": "s", "price": "c"})


def test_stock_rows_fold_into_one_record_per_sku(database: TestDatabase) -> None:
    database.run(
        """
        CREATE TABLE levels (sku VARCHAR(10), store VARCHAR(10), qty INTEGER);
        INSERT INTO levels VALUES ('A', 'berlin', 1), ('A', 'hamburg', 2), ('B', 'berlin', 5),
            ('C', NULL, NULL);
        """
    )
    connector = make(
        database.url,
        query="SELECT sku, store, qty FROM levels ORDER BY sku, store",
        mapping={"sku": "sku"},
        stock_rows={"location": "store", "quantity": "qty"},
    )
    records = list(connector.read())
    assert [(r.sku, r.stock) for r in records] == [
        ("A", {"berlin": 1, "hamburg": 2}),
        ("B", {"berlin": 5}),
        ("C", None),  # a LEFT JOIN without stock rows: stock not known here
    ]
    assert Field.STOCK in connector.fields()


def test_stock_rows_never_merge_what_may_be_two_articles(sqlite_database: TestDatabase) -> None:
    """A SKU again later, or a store twice within one SKU's rows, is another record: the
    check reports the SKU as a duplicate instead of summing two articles' stock."""
    sqlite_database.run(
        """
        CREATE TABLE levels (n INTEGER, sku TEXT, store TEXT, qty INTEGER);
        INSERT INTO levels VALUES (1, 'A', 'berlin', 1), (2, 'B', 'berlin', 5),
            (3, 'A', 'hamburg', 2), (4, 'C', 'berlin', 1), (5, 'C', 'berlin', 9);
        """
    )
    connector = make(
        sqlite_database.url,
        query="SELECT sku, store, qty FROM levels ORDER BY n",
        mapping={"sku": "sku"},
        stock_rows={"location": "store", "quantity": "qty"},
    )
    assert [(r.sku, r.stock) for r in connector.read()] == [
        ("A", {"berlin": 1}),
        ("B", {"berlin": 5}),
        ("A", {"hamburg": 2}),
        ("C", {"berlin": 1}),
        ("C", {"berlin": 9}),
    ]


def test_stock_rows_require_the_query_to_order_by_sku() -> None:
    with pytest.raises(ValidationError, match="ORDER BY the SKU column"):
        make(
            "sqlite://",
            query="SELECT sku, store, qty FROM levels",
            mapping={"sku": "sku"},
            stock_rows={"location": "store", "quantity": "qty"},
        )


def test_duplicate_skus_are_yielded_not_collapsed(database: TestDatabase) -> None:
    connector = items(database)
    database.query("INSERT INTO items (sku, title, price, stock) VALUES ('A-1', 'Hemd', 18, 1)")
    skus = [record.sku for record in connector.read()]
    assert sorted(skus) == ["A-1", "A-1", "A-2", "A-3"]


def test_null_and_negative_prices_and_fractional_stock_name_sku_and_column(
    database: TestDatabase,
) -> None:
    connector = items(database)
    database.query("UPDATE items SET price = NULL WHERE sku = 'A-1'")
    database.query("UPDATE items SET price = -5 WHERE sku = 'A-2'")
    database.run(
        "CREATE TABLE frac (sku VARCHAR(10), qty DECIMAL(10, 2));"
        "INSERT INTO frac VALUES ('F-1', 2.5)"
    )
    error = input_error(connector)
    text = str(error)
    assert "column 'price' (SKU A-1): the price is NULL" in text
    assert "column 'price' (SKU A-2): the price is negative (-5" in text
    assert error.exit_code == ExitCode.USAGE

    fractional = make(database.url, table="frac", mapping={"sku": "sku", "stock": "qty"})
    text = str(input_error(fractional))
    assert "column 'qty' (SKU F-1)" in text
    assert "must be a whole number" in text


def test_binary_floats_are_taken_by_their_shortest_form_or_refused(
    database: TestDatabase,
) -> None:
    database.run(
        "CREATE TABLE f (sku VARCHAR(10), price DOUBLE PRECISION, qty DOUBLE PRECISION);"
        "INSERT INTO f VALUES ('OK', 19.99, 3), ('NOISE', 0.1, 1);"
        # Float arithmetic: 0.1 + 0.2 in binary is 0.30000000000000004.
        "UPDATE f SET price = price + 0.2 WHERE sku = 'NOISE'"
    )
    connector = make(
        database.url,
        query="SELECT * FROM f WHERE sku = 'OK'",
        currency=EUR,
        mapping={"sku": "sku", "price": "price", "stock": "qty"},
    )
    [record] = connector.read()
    assert record.price == Money(D("19.99"), EUR)
    assert record.stock == {"default": 3}

    noisy = make(database.url, table="f", currency=EUR, mapping={"sku": "sku", "price": "price"})
    text = str(input_error(noisy))
    assert "column 'price' (SKU NOISE): 0.30000000000000004 is a binary floating-point" in text


def test_a_missing_table_is_named(database: TestDatabase) -> None:
    database.run(ARTICLES)
    connector = make(database.url, table="itemz", currency=EUR, mapping=ITEM_MAPPING)
    with pytest.raises(ConnectorError, match="no table 'itemz'") as caught:
        connector.check()
    assert "items" in caught.value.hint
    with pytest.raises(ConnectorError, match="no table 'itemz'"):
        list(connector.read())


def test_a_missing_column_is_named_with_the_mapping_key(database: TestDatabase) -> None:
    connector = items(database, mapping={**ITEM_MAPPING, "gtin": "ean"})
    for attempt in (connector.check, lambda: list(connector.read())):
        with pytest.raises(InputError) as caught:
            attempt()
        assert "no column 'ean' (wanted by mapping.gtin)" in str(caught.value)


def test_a_query_missing_a_mapped_column_is_named(database: TestDatabase) -> None:
    database.run(ARTICLES)
    connector = make(
        database.url,
        query="SELECT sku, title AS name FROM items",
        mapping={"sku": "sku", "title": "title"},
    )
    with pytest.raises(InputError, match=r"no column 'title' \(wanted by mapping.title\)"):
        connector.check()
    with pytest.raises(InputError, match="no column 'title'"):
        list(connector.read())


def test_a_query_on_a_missing_table_reports_the_database_message(
    database: TestDatabase,
) -> None:
    connector = make(database.url, query="SELECT sku FROM nowhere", mapping={"sku": "sku"})
    with pytest.raises(ConnectorError) as caught:
        list(connector.read())
    assert "nowhere" in str(caught.value)
    assert caught.value.where == "pos-db"


def test_queries_must_be_selects_without_parameters() -> None:
    with pytest.raises(ValidationError, match="must be a SELECT"):
        make("sqlite://", query="DELETE FROM items", mapping={"sku": "sku"})
    with pytest.raises(ValidationError, match="must not contain parameters"):
        make("sqlite://", query="SELECT * FROM items WHERE sku = :sku", mapping={"sku": "sku"})
    with pytest.raises(ValidationError, match="either table or query"):
        make("sqlite://", mapping={"sku": "sku"})


# -- connecting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a database URL"),
        ("oracle9://user:pw@host/db", "unknown database kind 'oracle9'"),
    ],
    ids=["not-a-url", "unknown-dialect"],
)
def test_a_wrong_url_is_a_config_error_without_the_url(url: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make(url, table="items", mapping={"sku": "sku"})
    errors = caught.value.errors()
    assert message in errors[0]["msg"]
    assert "pw" not in errors[0]["msg"]


@pytest.mark.parametrize(
    ("url", "module", "package"),
    [
        (f"postgresql://u:{PASSWORD}@127.0.0.1/db", "psycopg", "pip install 'psycopg[binary]'"),
        (f"mysql://u:{PASSWORD}@127.0.0.1/db", "pymysql", "pip install 'pymysql'"),
    ],
    ids=["postgres", "mariadb"],
)
def test_a_missing_driver_names_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch, url: str, module: str, package: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails
    connector = make(url, table="items", mapping={"sku": "sku"})
    with pytest.raises(ConnectorError) as caught:
        connector.check()
    assert "is not installed" in caught.value.message
    assert package in caught.value.hint
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize("backend", ["postgres", "mariadb"])
def test_rejected_credentials_are_an_auth_error_naming_the_channel(backend: str) -> None:
    server = PG_URL if backend == "postgres" else MYSQL_URL
    user = "omnisync_nobody" if backend == "postgres" else "root"
    url = sa.make_url(server).set(username=user, password=PASSWORD)
    shown = url.render_as_string(hide_password=False)
    connector = make(shown, name="pos-db", table="items", mapping={"sku": "sku"})
    try:
        connector.check()
    except AuthError as exc:
        error: ConnectorError = exc
    except TransientError as exc:  # the server is not running
        unreachable(f"server unreachable: {exc}")
        raise
    else:
        pytest.fail("a wrong password was accepted")
    text = str(error)
    assert error.exit_code == ExitCode.CHANNEL
    assert text.startswith("pos-db: the database rejected the credentials")
    assert PASSWORD not in text
    assert "***" in text
    assert PASSWORD not in secrets.mask(f"url was {url.render_as_string(hide_password=False)}")


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/test",
        f"mysql://root:{PASSWORD}@127.0.0.1:1/test",
    ],
    ids=["postgres", "mariadb"],
)
def test_an_unreachable_server_is_a_connector_error_with_the_password_masked(url: str) -> None:
    connector = make(url, table="items", mapping={"sku": "sku"}, connect_timeout=3)
    with pytest.raises(ConnectorError) as caught:
        list(connector.read())
    text = str(caught.value)
    assert "cannot connect to" in text
    assert PASSWORD not in text
    assert ":***@127.0.0.1:1" in text
    assert PASSWORD not in connector.describe()
    # Retried briefly, not with the full backoff: nothing is listening (omnisync.sdk.retry).
    assert isinstance(caught.value, UnreachableError)


def test_a_missing_sqlite_file_is_not_silently_created(tmp_path: Path) -> None:
    connector = make("sqlite:///missing.db", base=tmp_path, table="items", mapping={"sku": "sku"})
    with pytest.raises(ConnectorError, match="SQLite database file not found"):
        connector.check()
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize("backend", ["postgres", "mariadb"])
def test_a_connection_lost_mid_read_fails_the_read(
    request: pytest.FixtureRequest, backend: str
) -> None:
    """Never a partial, silent result: the backend is killed while rows stream."""
    database: TestDatabase = request.getfixturevalue(f"{backend}_database")
    if backend == "postgres":
        rows = 50000
        database.run(
            "CREATE TABLE big AS SELECT 'S-' || n AS sku, n AS qty "
            "FROM generate_series(1, 50000) AS n"
        )
        kill = (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = :name AND pid <> pg_backend_pid()"
        )
    else:
        # MariaDB streams without a server-side cursor: the rows already in flight arrive
        # before the error does, so the table is larger than the socket buffers.
        rows = 300000
        database.run(
            "CREATE TABLE big AS SELECT CONCAT('S-', seq) AS sku, seq AS qty FROM seq_1_to_300000"
        )
        kill = None
    connector = make(
        database.url, table="big", mapping={"sku": "sku", "stock": "qty"}, batch_size=100
    )
    stream = connector.read()
    seen = [next(stream)]
    admin = sa.create_engine(database.admin_url, poolclass=sa.pool.NullPool)
    with admin.begin() as connection:
        if kill:
            assert connection.execute(sa.text(kill), {"name": database.name}).rowcount == 1
        else:
            [session] = connection.execute(
                sa.text(
                    "SELECT id FROM information_schema.processlist "
                    "WHERE db = :name AND id <> CONNECTION_ID()"
                ),
                {"name": database.name},
            ).scalars()
            connection.execute(sa.text(f"KILL {int(session)}"))
    with pytest.raises(ConnectorError) as caught:
        seen.extend(stream)
    assert len(seen) < rows
    assert "lost while reading" in str(caught.value)
    assert caught.value.where == "pos-db"


def test_stopping_a_read_early_ends_the_stream_quietly(database: TestDatabase) -> None:
    """``current()`` and callers that look for one SKU stop reading half-way."""
    database.run("CREATE TABLE big (sku VARCHAR(20), qty INTEGER)")
    with database.engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO big VALUES (:sku, :qty)"),
            [{"sku": f"S-{n:05}", "qty": n} for n in range(20000)],
        )
    connector = make(
        database.url, table="big", mapping={"sku": "sku", "stock": "qty"}, batch_size=100
    )
    stream = connector.read()
    assert next(stream).sku
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no driver complaining about an unfinished result
        stream.close()
        gc.collect()
    assert sum(1 for _ in connector.read()) == 20000


def test_check_runs_select_1_and_finds_the_table(database: TestDatabase) -> None:
    connector = items(database)
    connector.check()
    assert connector.describe().endswith("(table items)")


def test_passwords_never_show_in_describe_or_errors() -> None:
    url = f"postgresql://pos:{PASSWORD}@127.0.0.1:1/pos"
    connector = make(url, table="items", mapping={"sku": "sku"})
    assert connector.describe() == "postgresql+psycopg://pos:***@127.0.0.1:1/pos (table items)"
    assert secrets.mask(f"failed: {PASSWORD}") == "failed: ***"  # registered as a secret


# -- writing -------------------------------------------------------------------------------


def test_write_binds_documented_parameters_and_the_change_shows_on_reread(
    database: TestDatabase,
) -> None:
    connector = pos(database)
    changes = [
        price_change("KA-1001", "47.99", "1", before="49.99"),
        stock_change("KA-1001", "berlin", 7),
        stock_change("KA-1003", "hamburg", 0),
    ]
    results = connector.write(changes)
    assert [(r.key, r.ok, r.error) for r in results] == [
        ("KA-1001:price", True, None),
        ("KA-1001:stock@berlin", True, None),
        ("KA-1003:stock@hamburg", True, None),
    ]
    records = by_sku(connector)
    assert records["KA-1001"].price == Money(D("47.99"), EUR)
    assert records["KA-1001"].stock == {"berlin": 7, "hamburg": 2}
    assert records["KA-1003"].stock == {"berlin": 0, "hamburg": 0}
    assert database.query("SELECT amount_cents FROM prices WHERE article_id = 1") == [(4799,)]
    current = connector.current(changes)
    assert current == {
        "KA-1001:price": {"amount": "47.99", "currency": EUR},
        "KA-1001:stock@berlin": 7,
        "KA-1003:stock@hamburg": 0,
    }


def test_a_statement_matching_no_row_fails_only_its_change(database: TestDatabase) -> None:
    connector = pos(database)
    results = connector.write(
        [
            price_change("KA-1002", "28.99", "2"),
            price_change("KA-9999", "1.99", "999"),
            stock_change("KA-1002", "munich", 1),  # no such store
        ]
    )
    assert [(r.ok, r.error) for r in results] == [
        (True, None),
        (False, "no row matched (SKU KA-9999)"),
        (False, "no row matched (SKU KA-9999)".replace("KA-9999", "KA-1002")),
    ]
    assert database.query("SELECT amount_cents FROM prices WHERE article_id = 2") == [(2899,)]


def test_a_rejected_change_is_reported_with_the_database_message_and_the_rest_applied(
    database: TestDatabase,
) -> None:
    connector = pos(database)
    results = connector.write(
        [
            price_change("KA-1003", "78.99", "3"),
            price_change("KA-1004", "-1.00", "4"),  # violates CHECK (amount_cents >= 0)
            price_change("KA-1005", "16.99", "5"),
        ]
    )
    assert [r.ok for r in results] == [True, False, True]
    error = results[1].error or ""
    assert "check" in error.lower() or "constraint" in error.lower(), error
    assert database.query(
        "SELECT article_id, amount_cents FROM prices WHERE article_id IN (3, 4, 5) "
        "ORDER BY article_id"
    ) == [(3, 7899), (4, 129899), (5, 1699)]


def test_a_change_of_several_statements_is_applied_whole_or_not_at_all(
    database: TestDatabase,
) -> None:
    options = pos_options(database.url)
    options["write"]["title"] = [
        "UPDATE articles SET name = :title WHERE sku = :sku",
        # Fails for KA-1002 only: its price row would break CHECK (amount_cents >= 0).
        "UPDATE prices SET amount_cents = amount_cents - 3000 WHERE article_id = :article_id",
    ]
    pos(database)
    connector = make(options.pop("url"), **options)
    results = connector.write(
        [
            Change("pos-db", "KA-1001", field="title", after="Mühle", ids={"article_id": "1"}),
            Change("pos-db", "KA-1002", field="title", after="Kocher", ids={"article_id": "2"}),
        ]
    )
    assert [r.ok for r in results] == [True, False]
    assert database.query("SELECT sku, name FROM articles WHERE id IN (1, 2) ORDER BY id") == [
        ("KA-1001", "Mühle"),
        ("KA-1002", "Espressokocher Alu 6 Tassen"),  # its first statement was undone too
    ]


def test_create_and_delete_statements_get_the_whole_record(database: TestDatabase) -> None:
    options = pos_options(database.url)
    options["write"]["create"] = [
        "INSERT INTO articles (id, sku, name, ean, vat_code) "
        "SELECT MAX(id) + 1, :sku, :title, :gtin, 'standard' FROM articles",
        "INSERT INTO prices (article_id, amount_cents, currency) "
        "SELECT id, :price_cents, :currency FROM articles WHERE sku = :sku",
    ]
    options["write"]["delete"] = [
        "DELETE FROM stock WHERE article_id IN (SELECT id FROM articles WHERE sku = :sku)",
        "DELETE FROM prices WHERE article_id IN (SELECT id FROM articles WHERE sku = :sku)",
        "DELETE FROM articles WHERE sku = :sku",
    ]
    pos(database)
    connector = make(options.pop("url"), **options)
    new = {
        "sku": "KA-2001",
        "title": "Milchkanne",
        "gtin": "04006381333931",
        "price": {"amount": "12.49", "currency": EUR},
    }
    old = record_to_json(by_sku(connector)["KA-1014"])
    results = connector.write(
        [
            Change("pos-db", "KA-2001", Op.CREATE, after=new),
            Change("pos-db", "KA-1014", Op.DELETE, before=old),
            Change("pos-db", "KA-9999", Op.DELETE, before={"sku": "KA-9999"}),
        ]
    )
    assert [(r.key, r.ok, r.error) for r in results] == [
        ("KA-2001:+", True, None),
        ("KA-1014:-", True, None),
        ("KA-9999:-", False, "no row matched (SKU KA-9999)"),
    ]
    records = by_sku(connector)
    assert "KA-1014" not in records
    assert records["KA-2001"].price == Money(D("12.49"), EUR)
    assert records["KA-2001"].stock is None  # no stock rows yet


def test_values_are_bound_never_formatted_into_sql(database: TestDatabase) -> None:
    connector = pos(database)
    hostile = "KA-1001'; DROP TABLE prices; --"
    [result] = connector.write([stock_change(hostile, "berlin", 1)])
    assert result.error == f"no row matched (SKU {hostile})"
    assert database.query("SELECT COUNT(*) FROM prices") == [(14,)]


def test_a_change_without_a_statement_or_id_fails_with_a_reason(
    sqlite_database: TestDatabase,
) -> None:
    connector = pos(sqlite_database)
    results = connector.write(
        [
            Change("pos-db", "KA-1001", field="title", after="X"),
            Change("pos-db", "KA-1001", field="price", after={"amount": "1.00", "currency": EUR}),
            price_change("KA-1002", "1.005", "2"),
        ]
    )
    assert results[0].error == "no write statement for 'title'; configure options.write.title"
    assert results[1].error == (
        "the record of SKU KA-1001 has no id 'article_id' (read it with mapping.ids)"
    )
    assert "more decimals than the EUR minor unit" in (results[2].error or "")


def test_write_statements_are_checked_up_front() -> None:
    base: dict[str, Any] = {"table": "t", "mapping": {"sku": "sku", "ids": {"article_id": "id"}}}
    with pytest.raises(ValidationError, match=r"unknown parameter :price_cent\b"):
        make("sqlite://", write={"price": "UPDATE p SET c = :price_cent WHERE s = :sku"}, **base)
    with pytest.raises(ValidationError, match="'colour' is not a field"):
        make("sqlite://", write={"colour": "UPDATE p SET c = :value"}, **base)
    connector = make(
        "sqlite://",
        write={"stock": "UPDATE s SET q = :quantity WHERE a = :article_id AND l = :location"},
        **base,
    )
    assert connector.capabilities.writes == {Entity.STOCK}
    assert type(connector).capabilities.writes == set(Entity)


def test_preview_shows_statements_and_bound_values(sqlite_database: TestDatabase) -> None:
    connector = pos(sqlite_database)
    [shown] = connector.preview([price_change("KA-1001", "47.99", "1")])
    payload = shown["send"]  # every connector's preview: {"send": payload} / {"refused": ...}
    [statement] = payload["statements"]
    assert payload["key"] == "KA-1001:price"
    assert statement["sql"].startswith("UPDATE prices SET amount_cents = :price_cents")
    assert statement["params"] == {"price_cents": 4799, "article_id": "1", "currency": EUR}


def test_a_script_keeps_its_colons_and_percent_signs(database: TestDatabase) -> None:
    database.run(
        "CREATE TABLE notes (body VARCHAR(40));"
        "INSERT INTO notes VALUES ('10:30 :sku 100% off; really');"
    )
    assert database.query("SELECT body FROM notes") == [("10:30 :sku 100% off; really",)]


def test_split_statements_honours_quotes_and_comments() -> None:
    script = "-- a; comment\nCREATE TABLE t (a TEXT); /* x; y */ INSERT INTO t VALUES ('a;''b');"
    assert list(split_statements(script)) == [
        "CREATE TABLE t (a TEXT)",
        "INSERT INTO t VALUES ('a;''b')",
    ]


def test_price_statements_bind_exact_decimals_on_every_backend(database: TestDatabase) -> None:
    # README: `:price` is the amount in major units (Decimal). SQLite's driver has no Decimal.
    connector = items(
        database,
        write={
            "price": "UPDATE items SET price = :price WHERE sku = :sku",
            "create": "INSERT INTO items (sku, title, price, stock) "
            "VALUES (:sku, :title, :price, :quantity)",
        },
    )
    results = connector.write(
        [
            Change("pos-db", "A-1", field="price", after={"amount": "17.49", "currency": EUR}),
            Change(
                "pos-db",
                "A-9",
                Op.CREATE,
                after={
                    "sku": "A-9",
                    "title": "Mütze",
                    "price": {"amount": "0.10", "currency": EUR},
                },
            ),
        ]
    )
    assert [(r.ok, r.error) for r in results] == [(True, None), (True, None)]
    records = by_sku(connector)
    assert records["A-1"].price == Money(D("17.49"), EUR)
    assert records["A-9"].price == Money(D("0.10"), EUR)
    assert connector.current(
        [Change("pos-db", "A-1", field="price", after={"amount": "17.49", "currency": EUR})]
    ) == {"A-1:price": {"amount": "17.49", "currency": EUR}}
