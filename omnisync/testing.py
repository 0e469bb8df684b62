"""Contract tests any connector runs in one line, ours or a third party's.

::

    from omnisync.testing import ConnectorContract

    class TestMyConnector(ConnectorContract):
        @pytest.fixture
        def connector(self, tmp_path):
            return MyConnector(MyConnector.Options.model_validate({...}), ConnectorContext("shop"))

The fixture should return a connector whose source holds a few records (ideally with every
field its options map), reachable from the test (a file, a local server).
"""

from __future__ import annotations

import pytest

from omnisync.connector import Connector
from omnisync.models import Field, Record


class ConnectorContract:
    """Subclass as ``Test...`` and provide a ``connector`` fixture."""

    @pytest.fixture
    def records(self, connector: Connector) -> list[Record]:
        return list(connector.read())

    def test_read_yields_records_keyed_by_sku(self, records: list[Record]) -> None:
        assert records, "the fixture's source should hold at least one record"
        for record in records:
            assert isinstance(record, Record)
            assert isinstance(record.sku, str)
            assert record.sku.strip(), f"blank SKU from {record.origin or 'the connector'}"
            assert record.sku == record.sku.strip()

    def test_records_carry_only_the_declared_fields(
        self, connector: Connector, records: list[Record]
    ) -> None:
        declared = connector.fields()
        for record in records:
            carried = {field for field in Field if getattr(record, field.value) is not None}
            undeclared = carried - declared
            assert not undeclared, (
                f"{record.origin or record.sku} carries {sorted(undeclared)} "
                f"that fields() does not declare ({sorted(declared)})"
            )

    def test_capabilities_cover_the_fields(self, connector: Connector) -> None:
        entities = {field.entity for field in connector.fields()}
        assert entities <= connector.capabilities.reads
        assert entities <= type(connector).capabilities.reads

    def test_check_passes(self, connector: Connector) -> None:
        connector.check()

    def test_describe_names_the_source(self, connector: Connector) -> None:
        assert connector.describe().strip()

    def test_has_a_one_line_description(self, connector: Connector) -> None:
        description = type(connector).description
        assert description.strip()
        assert "\n" not in description
