"""SQL databases through SQLAlchemy: PostgreSQL, MariaDB/MySQL, SQLite (``connector: sql``).

``connector.py`` is the contract, ``options.py`` its options and their validation,
``engine.py`` makes connections and translates database errors, ``read.py`` streams a table's
or a query's rows as records, ``write.py`` writes a batch in one transaction (savepoints when
a statement fails), ``statements.py`` binds write parameters, ``load.py`` loads a SQL script
(the example POS schema) into a database with nothing but Python.
"""
