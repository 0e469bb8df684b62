"""Medusa v2 through its Admin REST API (``connector: medusa``).

``connector.py`` maps variants to records and corrections to requests, ``api.py`` holds the
HTTP side: authentication (secret API key, or email/password with a JWT renewed when it
expires), decoding, paging.
"""
