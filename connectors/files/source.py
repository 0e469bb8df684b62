"""A file as read for rewriting: its bytes, byte-order mark, codec and text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SourceText:
    """A file as read for rewriting."""

    path: Path
    data: bytes
    bom: bytes
    codec: str
    text: str
    mtime_ns: int
    size: int

    def encode(self, text: str) -> bytes:
        return self.bom + text.encode(self.codec)

    def can_encode(self, text: str) -> bool:
        try:
            text.encode(self.codec)
        except UnicodeEncodeError:
            return False
        return True
