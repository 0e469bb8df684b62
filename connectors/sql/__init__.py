"""SQL databases through SQLAlchemy: PostgreSQL, MariaDB/MySQL, SQLite (``connector: sql``).

``connector.py`` reads and writes, ``engine.py`` makes connections and translates database
errors, ``statements.py`` binds write parameters, ``load.py`` loads a SQL script (the
example POS schema) into a database with nothing but Python.
"""
