"""The options of the sql connector and their validation: the source (a table or a SELECT),
the mapping, long-form stock rows, and the write statements with the parameters they may bind.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field as PydanticField
from pydantic import StringConstraints, field_validator, model_validator

from omnisync.sdk.connector import ConnectorOptions
from omnisync.sdk.mapping import FieldMapping, ParseOptions

from . import statements
from .engine import parse_url
from .outbox import OutboxOptions

Column = Annotated[str, StringConstraints(min_length=1)]
Statement = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)
_SELECT = re.compile(r"^\s*(\(\s*)*(select|with)\b", re.IGNORECASE)
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


class StockRows(ConnectorOptions):
    """Stock in long form: each row carries one location and its quantity."""

    #: Column with the location (store code); rows with NULL location and quantity are skipped.
    location: Column
    #: Column with the quantity at that location.
    quantity: Column


class SqlOptions(ParseOptions):
    """Options of the sql connector."""

    #: A SQLAlchemy database URL. May carry a password: write it as ${ENV_VAR}.
    url: Annotated[str, StringConstraints(min_length=1)]
    #: The table to read (``articles`` or ``schema.articles``); or set ``query``.
    table: str | None = None
    #: A SELECT whose result columns the mapping names; or set ``table``.
    query: str | None = None
    #: Which column holds which record field.
    mapping: FieldMapping
    #: ``minor``: price columns hold whole minor units of the currency (cents; yen for JPY).
    price_unit: Literal["major", "minor"] = "major"
    #: One row per (SKU, location): ``{location: column, quantity: column}``.
    stock_rows: StockRows | None = None
    #: Rows fetched per round trip from the server-side cursor.
    batch_size: int = PydanticField(default=1000, ge=1, le=100_000)
    #: Seconds to wait for a connection (SQLite: for a locked database).
    connect_timeout: float = PydanticField(default=10, gt=0)
    #: ``{field | create | delete: statement or [statements]}`` with bound parameters.
    write: dict[str, Statement | list[Statement]] = PydanticField(default_factory=dict)
    #: The most changes one write transaction carries.
    max_batch: int = PydanticField(default=500, ge=1, le=10_000)
    #: ``omnisync watch`` follows the rows triggers write here (see :mod:`.outbox`).
    outbox: OutboxOptions | None = None

    @field_validator("url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        parse_url(value)  # raises ValueError without echoing the URL
        return value

    @field_validator("table")
    @classmethod
    def _table_name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("name a table, or leave it out and set query")
        return value.strip() if value else value

    @field_validator("query")
    @classmethod
    def _select(cls, value: str | None) -> str | None:
        if value is None:
            return None
        query = value.strip().rstrip(";").rstrip()
        if not _SELECT.match(_COMMENT.sub(" ", query)):
            raise ValueError("must be a SELECT (or WITH ... SELECT) statement")
        if statements.bind_names(query):
            names = ", ".join(f":{n}" for n in statements.bind_names(query))
            raise ValueError(f"must not contain parameters ({names}); write a literal colon as \\:")
        return query

    @field_validator("write")
    @classmethod
    def _statements(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        for key, given in value.items():
            if key not in statements.WRITE_KEYS:
                known = ", ".join(statements.WRITE_KEYS)
                raise ValueError(f"{key!r} is not a field or create/delete; known: {known}")
            if isinstance(given, list) and not given:
                raise ValueError(f"{key}: give at least one statement")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SqlOptions:
        if (self.table is None) == (self.query is None):
            raise ValueError("set either table or query (not both)")
        if self.stock_rows is not None:
            if self.mapping.stock is not None:
                raise ValueError(
                    "map stock either in mapping.stock (a column per location) or in "
                    "stock_rows (a row per location), not both"
                )
            if self.query is not None and not _ORDER_BY.search(self.query):
                raise ValueError(
                    f"stock_rows needs the query to ORDER BY the SKU column "
                    f"({self.mapping.sku}) so that the rows of one SKU are adjacent"
                )
        if self.price_unit == "minor" and not (self.currency or self.mapping.currency):
            raise ValueError(
                "price_unit: minor needs the currency (set currency, or map a currency "
                "column): the minor unit of EUR is a cent, of JPY a yen"
            )
        ids = set(self.mapping.ids)
        clashing = sorted(ids & statements.RESERVED)
        if clashing and self.write:
            raise ValueError(
                f"mapping.ids {clashing} take names of write parameters; rename the ids"
            )
        for key, given in self.write.items():
            allowed = statements.parameters_for(key) | ids
            for statement in [given] if isinstance(given, str) else given:
                unknown = [n for n in statements.bind_names(statement) if n not in allowed]
                if unknown:
                    raise ValueError(
                        f"write.{key}: unknown parameter "
                        f"{', '.join(':' + n for n in unknown)}; "
                        f"known: {', '.join(':' + n for n in sorted(allowed))}"
                    )
        return self
