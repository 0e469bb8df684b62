"""Benchmarks of omnisync, each printing ratios against a baseline measured in the same run.

``python -m bench`` runs the catalogue-check suite (:mod:`bench.run`); ``bench/sql_memory.py``
measures the sql connector's memory while streaming; ``bench/*_pull.py`` the shop connectors
against their emulators; ``python -m bench.watch`` (:mod:`bench.watch`) the event → write
latency and coalescing of ``omnisync watch`` against three WooCommerce emulators, with the time
an ``omnisync sync`` of the same change takes as its baseline.
"""
