"""Magento 2 / Adobe Commerce through its REST API (``connector: magento2``).

``connector.py`` holds the options and the connector (reads, incremental and targeted pulls,
writes), ``client.py`` the tokens (integration or admin), searchCriteria and paging,
``records.py`` the translation between Magento's products and source items and
:class:`~omnisync.models.Record` (and from planned changes back), ``bulk.py`` the
asynchronous bulk API (schedule, poll, each operation's outcome).
"""
