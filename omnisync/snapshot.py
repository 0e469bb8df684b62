"""Snapshots: every source a check read, kept as Parquet, to re-diff offline with new rules.

With ``settings.snapshots`` on, a recorded check writes the tables the diff engine loaded
for canonical and each channel (``items``, ``stock`` and, from record streams, ``prices``,
``modified``, ``lists``) to ``<folder>/<run id>/<source>/<part>.parquet``, with a
``manifest.json`` saying what each source was (its connector, fields, record count, the
quality notes its connector made). The folder is written under a temporary name and renamed
when the run is recorded, so a crash or an unrecorded check (``--no-history``) leaves no
half snapshot behind (a temporary folder a ``kill -9`` left is removed by the next
snapshot).

``omnisync check --from-snapshot RUN`` loads those tables instead of reading the sources and
compares them under the config as it is now: new tolerances, severities, price rules or
mappings of expectations, the same data. The channels of the config are compared with what
the snapshot holds of them; one it lacks is an error on its report.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from omnisync.errors import InputError, Problem, UsageError
from omnisync.expect import sql_str
from omnisync.load import RECORD_PARTS, Engine, Side
from omnisync.models import Field, QualityNote

log = logging.getLogger(__name__)

#: The layout version of a snapshot folder; a reader refuses others.
FORMAT = 1
#: The engine's tables of one loaded source, by suffix.
PARTS = ("items", "stock", *RECORD_PARTS)
MANIFEST = "manifest.json"
_TEMP = ".partial-"


@dataclass
class _Source:
    """One source in a snapshot's manifest."""

    folder: str
    connector: str
    where: str
    count: int
    duplicates: int
    fields: list[str]
    parts: list[str]
    notes: list[dict[str, Any]] = field(default_factory=list)


class SnapshotWriter:
    """Writes the sources of one check into a temporary folder, renamed to the run id by
    :meth:`commit` once the run is recorded, or removed by :meth:`discard`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / f"{_TEMP}{uuid.uuid4().hex[:12]}"
        self.sources: dict[str, _Source] = {}
        self._lock = threading.Lock()
        self._clear_leftovers()
        try:
            self.folder.mkdir(parents=True)
        except OSError as exc:
            raise UsageError(
                f"cannot create the snapshot folder {root}: {exc.strerror or exc}",
                hint="point settings.snapshots.path at a writable folder, or turn snapshots off",
            ) from None

    def _clear_leftovers(self) -> None:
        """Remove temporary folders of checks that died (older than an hour: a check
        running beside this one may be writing its own)."""
        if not self.root.is_dir():
            return
        now = datetime.now().timestamp()
        for entry in self.root.iterdir():
            if entry.name.startswith(_TEMP) and now - entry.stat().st_mtime > 3600:
                shutil.rmtree(entry, ignore_errors=True)

    def keep(self, engine: Engine, name: str, side: Side, connector: str) -> None:
        """Write the loaded ``side`` of source ``name`` (``canonical`` or a channel)."""
        folder = f"{len(self.sources):03d}-{_safe(name)}"
        target = self.folder / folder
        target.mkdir()
        parts = [part for part in PARTS if _exists(engine, f"{side.table}_{part}")]
        for part in parts:
            path = target / f"{part}.parquet"
            engine.con.execute(
                f"COPY (SELECT * FROM {side.table}_{part}) TO {sql_str(str(path))} "
                "(FORMAT PARQUET, COMPRESSION ZSTD)"
            )
        with self._lock:
            self.sources[name] = _Source(
                folder=folder,
                connector=connector,
                where=side.where,
                count=side.count,
                duplicates=side.duplicates,
                fields=sorted(f.value for f in side.fields),
                parts=parts,
                notes=[asdict(note) for note in side.notes],
            )

    def commit(self, run_id: str, evaluated_at: datetime, fingerprint: str) -> Path:
        """Write the manifest and move the folder to its run id; the folder."""
        manifest = {
            "format": FORMAT,
            "run": run_id,
            "evaluated_at": evaluated_at.isoformat(),
            "config_fingerprint": fingerprint,
            "sources": {name: asdict(source) for name, source in self.sources.items()},
        }
        path = self.folder / MANIFEST
        with open(path, "w", encoding="utf-8") as out:
            json.dump(manifest, out, ensure_ascii=False, indent=1)
            out.flush()
            os.fsync(out.fileno())
        final = self.root / run_id
        os.replace(self.folder, final)
        _fsync_dir(self.root)
        log.info("snapshot of run %s: %s", run_id, final)
        return final

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class SnapshotReader:
    """The sources of a snapshot, restored into an engine in place of reading them."""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.run = str(manifest["run"])
        self.evaluated_at = datetime.fromisoformat(manifest["evaluated_at"])
        self.sources = {name: _Source(**data) for name, data in manifest["sources"].items()}

    @classmethod
    def open(cls, root: Path, run_id: str) -> SnapshotReader:
        folder = root / run_id
        path = folder / MANIFEST
        if not path.is_file():
            taken = (
                sorted(p.name for p in root.iterdir() if (p / MANIFEST).is_file())
                if (root.is_dir())
                else []
            )
            shown = ", ".join(taken[-5:]) if taken else "none"
            raise UsageError(
                f"run {run_id} has no snapshot in {root}",
                hint=f"snapshots there (newest last): {shown}; settings.snapshots must be on "
                "when the check runs",
            )
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            if manifest.get("format") != FORMAT:
                raise ValueError(f"format {manifest.get('format')!r}, this omnisync reads {FORMAT}")
            return cls(folder, manifest)
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                [Problem(str(path), f"not a snapshot manifest omnisync can read: {exc}")],
                hint="the snapshot is damaged or from another omnisync version",
            ) from None

    def restore(self, engine: Engine, name: str, table: str) -> Side:
        """Source ``name`` as ``table``'s tables in ``engine``; its side as it was loaded."""
        source = self.sources.get(name)
        if source is None:
            raise InputError(
                [Problem(str(self.folder), f"snapshot of run {self.run} holds no source {name!r}")],
                where=name,
                hint=f"it holds: {', '.join(self.sources)}",
            )
        engine.drop(table)
        for part in source.parts:
            path = self.folder / source.folder / f"{part}.parquet"
            if not path.is_file():
                raise InputError(
                    [Problem(str(path), "missing from the snapshot")],
                    where=name,
                    hint="the snapshot folder was changed by hand; take another",
                )
            engine.con.execute(
                f"CREATE TABLE {table}_{part} AS SELECT * FROM read_parquet({sql_str(str(path))})"
            )
        return Side(
            table=table,
            count=source.count,
            fields=frozenset(Field(f) for f in source.fields),
            duplicates=source.duplicates,
            notes=tuple(QualityNote(**note) for note in source.notes),
            where=source.where,
        )

    def connector(self, name: str) -> str:
        return self.sources[name].connector if name in self.sources else "?"


def _exists(engine: Engine, table: str) -> bool:
    row = engine.con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]
    ).fetchall()[0]
    if row and row[0]:
        return True
    row = engine.con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [table]
    ).fetchall()[0]
    return bool(row and row[0])


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:40] or "source"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_snapshots(root: Path | None, run_ids: list[str]) -> int:
    """Delete the snapshots of pruned runs; how many there were."""
    if root is None or not root.is_dir():
        return 0
    removed = 0
    for run_id in run_ids:
        folder = root / run_id
        if (folder / MANIFEST).is_file():
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def snapshot_root(setting: bool | str | None, base_dir: Path) -> Path | None:
    """The folder ``settings.snapshots`` names (relative to the config file), or None."""
    if not setting:
        return None
    return base_dir / (".omnisync/snapshots" if setting is True else str(setting))
