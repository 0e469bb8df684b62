"""Shopify through the Admin GraphQL API (``connector: shopify``).

``connector.py`` holds the options and the connector (read, incremental pulls, writes),
``client.py`` the GraphQL transport on the shared HTTP layer with cost-based pacing,
``records.py`` the queries and the mapping between Shopify objects, records and mutations.
"""
