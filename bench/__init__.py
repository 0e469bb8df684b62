"""Benchmarks of omnisync, each printing ratios against a baseline measured in the same run.

``python -m bench`` runs the catalogue-check suite (:mod:`bench.run`); ``bench/sql_memory.py``
measures the sql connector's memory while streaming.
"""
