"""Built-in omnisync connectors, installed under the import name ``omnisync_connectors``.

Each registers through the ``omnisync.connectors`` entry-point group (see pyproject.toml),
exactly as a third-party connector package would.
"""
