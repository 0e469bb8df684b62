"""Vendure 3 through its Admin GraphQL API (``connector: vendure``).

``connector.py`` maps variants to records and corrections to mutations, ``api.py`` holds the
GraphQL side: login (the session token arrives in a response header) and the classification
of GraphQL errors, which Vendure mostly sends with HTTP 200.
"""
