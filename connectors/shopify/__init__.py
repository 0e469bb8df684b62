"""Shopify through the Admin GraphQL API (``connector: shopify``).

``connector.py`` holds the options and the connector (read, incremental pulls, writes),
``client.py`` the GraphQL transport on the shared HTTP layer with cost-based pacing, the
queries and their cost, ``records.py`` the mapping between Shopify objects and records, and
``mutations.py`` changes as mutations and their ``userErrors`` as per-change failures.
"""
