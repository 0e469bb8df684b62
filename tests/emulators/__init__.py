"""Local emulators of the channel APIs, served on 127.0.0.1 for connector tests and benchmarks.

Each emulator is a stateful ASGI app that behaves as the platform's API is documented to
(auth, pagination, page and batch limits, throttling, error shapes, per-item failures), so a
push is visible to the next pull. :mod:`tests.emulators.server` serves any of them with
configurable latency and fault injection.
"""
