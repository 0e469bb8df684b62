"""A file parsed for editing, as the write side sees it: a :class:`Document` whose rows are
addressed by ``ref``, each row's :class:`Cells` column by column, and what a batch did to a
row (:class:`Touched`). Each format implements a document (``CsvDocument``, ``JsonDocument``,
``JsonLinesDocument``); :mod:`.editor` applies changes to it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

from omnisync.errors import Problem
from omnisync.models import Change, Op, Record
from omnisync.sdk.mapping import RowMapper

from .source import SourceText
from .styles import blank


@dataclass
class Touched:
    """What a batch did to one row."""

    op: Op
    sku: str
    keys: list[str] = field(default_factory=list)


class Cells(Protocol):
    """One row of a document, column by column (a JSON object by dotted path)."""

    #: JSON: values keep their JSON type (numbers stay numbers); CSV: every cell is text.
    typed: bool

    def get(self, column: str) -> Any:
        """The raw value, or :data:`~.styles.MISSING` when the row has no such column."""

    def set(self, column: str, value: Any) -> None:
        """Store a raw value; ``None`` blanks the cell."""

    def inherited(self, column: str) -> Any:
        """The value a blank cell takes from its group's first row (CSV ``group_by``), else None."""


class Document(ABC):
    """A file parsed for editing. Rows are addressed by ``ref`` (an int that stays valid while
    rows are added and removed); unchanged rows are written back exactly as they were read."""

    def __init__(self, source: SourceText, mapper: RowMapper, label: str) -> None:
        self.source = source
        self.mapper = mapper
        #: The path as configured, for messages.
        self.label = label
        #: Rows changed, created or deleted so far, in order.
        self.touched: dict[int, Touched] = {}
        self._samples: dict[str, Any] = {}

    def touch(self, ref: int, change: Change) -> None:
        entry = self.touched.setdefault(ref, Touched(change.op, change.sku))
        if change.op is not Op.UPDATE:
            entry.op = change.op  # created then updated stays a create
        entry.keys.append(change.key)

    @abstractmethod
    def refs(self, sku: str) -> list[int]:
        """The rows holding ``sku`` (more than one when the file lists it twice)."""

    @abstractmethod
    def row_record(self, ref: int) -> tuple[Record | None, list[Problem]]:
        """The row as the connector reads it, or ``None`` and the problems that stop it."""

    @abstractmethod
    def cells(self, ref: int) -> Cells: ...

    @abstractmethod
    def append(self, sku: str) -> int:
        """A new empty row for ``sku`` at the end of the records."""

    def created(self, ref: int) -> None:  # noqa: B027 - most formats need no finishing
        """Called once a new row is filled (JSON reorders the keys like its neighbours)."""

    @abstractmethod
    def discard(self, ref: int) -> None:
        """Forget a row :meth:`append` made (its create failed)."""

    @abstractmethod
    def delete(self, ref: int) -> None:
        """Remove the row; :class:`ChangeRejected` when the file's layout does not allow it."""

    @abstractmethod
    def snapshot(self, ref: int) -> Any: ...

    @abstractmethod
    def restore(self, ref: int, snapshot: Any) -> None: ...

    @abstractmethod
    def where(self, ref: int) -> str:
        """``path:line`` of the row, for messages."""

    @abstractmethod
    def payload(self, ref: int) -> Any:
        """The row as it would be written (CSV: column -> text; JSON: the object)."""

    @abstractmethod
    def render(self) -> str:
        """The whole file as text, with every edit applied."""

    @abstractmethod
    def column_values(self, column: str) -> Any:
        """The original rows' values of ``column``, in file order (for :meth:`sample`)."""

    def sample(self, column: str) -> Any:
        """The first non-blank value of ``column`` in the file as read: how the file writes it."""
        if column not in self._samples:
            self._samples[column] = next(
                (value for value in self.column_values(column) if not blank(value)), None
            )
        return self._samples[column]

    def encode(self) -> bytes:
        return self.source.encode(self.render())
