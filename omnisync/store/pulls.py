"""Incremental pull state: high-water marks and the cached catalogue of each source (the :class:`~omnisync.sdk.PullState` the connectors see)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    insert,
)
from sqlmodel import SQLModel, select

from omnisync.store.db import (
    StoreBase,
)
from omnisync.store.rows import (
    chunks,
)
from omnisync.store.schema import (
    FINDING_CHUNK,
    CacheRow,
    MarkRow,
)


class PullMixin(StoreBase):
    """High-water marks and cached catalogues, keyed by source name."""

    # -- incremental pulls

    def pull_mark(self, source: str, key: str) -> str | None:
        """A source's high-water mark (None before its first full pull)."""
        with self._errors("read the pull mark"), self._session() as session:
            row = session.get(MarkRow, (source, key))
            return row.value if row else None

    def set_pull_mark(self, source: str, key: str, value: str) -> None:
        with self._errors("record the pull mark"), self._session(write=True) as session:
            row = session.get(MarkRow, (source, key))
            now = datetime.now(UTC)
            if row is None:
                session.add(MarkRow(source=source, key=key, value=value, updated_at=now))
            else:
                row.value, row.updated_at = value, now
                session.add(row)

    def cache_replace(self, source: str, records: Iterable[dict[str, Any]]) -> int:
        """Replace a source's cached catalogue (after a full pull: deletions disappear)."""
        table = SQLModel.metadata.tables[CacheRow.__tablename__]
        now = datetime.now(UTC)
        count = 0
        with self._errors("cache the catalogue"), self._connection(write=True) as conn:
            conn.execute(table.delete().where(table.c.source == source))
            rows = (
                {
                    "source": source,
                    "sku": r["sku"],
                    "record_json": json.dumps(r, ensure_ascii=False),
                    "updated_at": now,
                }
                for r in records
            )
            for chunk in chunks(rows, FINDING_CHUNK):
                conn.execute(insert(table), chunk)
                count += len(chunk)
        return count

    def cache_merge(
        self, source: str, records: Iterable[dict[str, Any]], deleted: Iterable[str] = ()
    ) -> None:
        """Upsert changed records (and drop deleted SKUs) in a source's cached catalogue."""
        table = SQLModel.metadata.tables[CacheRow.__tablename__]
        now = datetime.now(UTC)
        with self._errors("update the catalogue cache"), self._connection(write=True) as conn:
            for sku in deleted:
                conn.execute(table.delete().where(table.c.source == source, table.c.sku == sku))
            for chunk in chunks(records, FINDING_CHUNK):
                # A SKU twice in one pull: the later record wins, as it would in the channel.
                chunk = list({r["sku"]: r for r in chunk}.values())
                skus = [r["sku"] for r in chunk]
                conn.execute(table.delete().where(table.c.source == source, table.c.sku.in_(skus)))
                conn.execute(
                    insert(table),
                    [
                        {
                            "source": source,
                            "sku": r["sku"],
                            "record_json": json.dumps(r, ensure_ascii=False),
                            "updated_at": now,
                        }
                        for r in chunk
                    ],
                )

    def cache(self, source: str) -> Iterator[dict[str, Any]]:
        """A source's cached catalogue, record by record (as record_to_json dicts)."""
        table = SQLModel.metadata.tables[CacheRow.__tablename__]
        with self._errors("read the catalogue cache"), self._connection() as conn:
            result = conn.execution_options(yield_per=FINDING_CHUNK).execute(
                select(table.c.record_json).where(table.c.source == source).order_by(table.c.sku)
            )
            for (text_,) in result:
                yield json.loads(text_)
