"""Shopware 6 through its Admin API (``connector: shopware6``).

``connector.py`` holds the options and the connector (reads, incremental pulls, writes with
bisection of rejected sync batches), ``client.py`` the OAuth client-credentials token and the
two endpoints used (``/api/search/{entity}``, ``/api/_action/sync``), ``records.py`` the
translation between Shopware's product objects and :class:`~omnisync.models.Record`, and
between planned changes and sync payloads.
"""
