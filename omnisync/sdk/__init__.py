"""The connector author's kit: everything a connector imports, and nothing of the pipeline.

A third-party connector imports from ``omnisync.sdk`` only::

    from omnisync.sdk import Capabilities, Connector, ConnectorOptions, Entity, Field, Record

Modules (for what the top level does not re-export):

=================  ==========================================================================
``connector``      the contract: :class:`Connector`, options base, context, capabilities
``http``           :class:`HttpConnector`, the retrying HTTP client, API error messages
``retry``          retry with backoff for transient errors
``incremental``    pulls that read only what changed since the last high-water mark
``mapping``        column mappings of tabular sources (:class:`RowMapper`)
``columnar``       the same mapping as DuckDB SQL (the fast path of big files)
``values``         the JSON form of field values that plans and journals carry
``testing``        :class:`ConnectorContract`, the test class every connector runs
``write``          :class:`BatchWriter`, the one write routine (batches, refusals, previews)
=================  ==========================================================================

Names are resolved on first use (PEP 562), so importing the kit costs nothing until a name is
used: ``omnisync --help`` does not import httpx because a file connector imports ``Record``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

#: Public name -> the module that defines it.
_WHERE = {
    "AuthError": "omnisync.errors",
    "BatchWriter": "omnisync.sdk.write",
    "Availability": "omnisync.models",
    "Capabilities": "omnisync.sdk.connector",
    "Change": "omnisync.models",
    "ChangeFeed": "omnisync.sdk.feed",
    "ChangeRejected": "omnisync.errors",
    "Connector": "omnisync.sdk.connector",
    "ConnectorContext": "omnisync.sdk.connector",
    "ConnectorContract": "omnisync.sdk.testing",
    "ConnectorError": "omnisync.errors",
    "ConnectorOptions": "omnisync.sdk.connector",
    "Entity": "omnisync.models",
    "FeedBatch": "omnisync.sdk.feed",
    "Field": "omnisync.models",
    "FieldMapping": "omnisync.sdk.mapping",
    "HttpClient": "omnisync.sdk.http",
    "HttpConnector": "omnisync.sdk.http",
    "HttpError": "omnisync.sdk.http",
    "HttpOptions": "omnisync.sdk.http",
    "InputError": "omnisync.errors",
    "Money": "omnisync.models",
    "Op": "omnisync.models",
    "ParseOptions": "omnisync.sdk.mapping",
    "Prepared": "omnisync.sdk.write",
    "Problem": "omnisync.errors",
    "PullState": "omnisync.sdk.connector",
    "QualityNote": "omnisync.models",
    "Record": "omnisync.models",
    "Retry": "omnisync.sdk.retry",
    "RowMapper": "omnisync.sdk.mapping",
    "SnapshotFeed": "omnisync.sdk.feed",
    "TableTarget": "omnisync.sdk.connector",
    "TransientError": "omnisync.errors",
    "UnreachableError": "omnisync.errors",
    "UpdateLimit": "omnisync.sdk.connector",
    "WriteResult": "omnisync.models",
    "incremental_read": "omnisync.sdk.incremental",
}

__all__ = [
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

if TYPE_CHECKING:
    from omnisync.errors import (
        AuthError,
        ChangeRejected,
        ConnectorError,
        InputError,
        Problem,
        TransientError,
        UnreachableError,
    )
    from omnisync.models import (
        Availability,
        Change,
        Entity,
        Field,
        Money,
        Op,
        QualityNote,
        Record,
        WriteResult,
    )
    from omnisync.sdk.connector import (
        Capabilities,
        Connector,
        ConnectorContext,
        ConnectorOptions,
        PullState,
        TableTarget,
        UpdateLimit,
    )
    from omnisync.sdk.feed import ChangeFeed, FeedBatch, SnapshotFeed
    from omnisync.sdk.http import HttpClient, HttpConnector, HttpError, HttpOptions
    from omnisync.sdk.incremental import incremental_read
    from omnisync.sdk.mapping import FieldMapping, ParseOptions, RowMapper
    from omnisync.sdk.retry import Retry
    from omnisync.sdk.testing import ConnectorContract
    from omnisync.sdk.write import BatchWriter, Prepared


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'omnisync.sdk' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
