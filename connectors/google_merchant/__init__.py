"""Google Merchant Center through the Merchant API (``connector: google_merchant``).

``connector.py`` holds the options and the connector (paged reads with local inventories per
store, product input and local inventory writes in HTTP batches, the wait for Google's
processing), ``client.py`` the token, the products list and Google's HTTP batch format,
``auth.py`` the service account's signed token request, and ``records.py`` the translation
between the API's products and local inventories and :class:`~omnisync.models.Record`, and
between planned changes and product inputs.
"""
