"""WooCommerce shops through the REST API v3 (``connector: woocommerce``).

``connector.py`` has the options and the connector (pull, incremental pull, batched writes),
``client.py`` the REST requests on omnisync's HTTP layer (auth, paging, error hints),
``records.py`` the mapping between WooCommerce objects, records and batch items.
"""
