"""omnisync: keep every sales channel consistent with the canonical catalogue."""

__version__ = "0.1.0"
