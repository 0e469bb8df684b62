"""Session fixtures: a real Medusa and a real Vendure server, installed, started and seeded once
per test session and stopped at its end (see servers.py for how).

Outside CI, a missing prerequisite (Node.js/npm, PostgreSQL for Medusa, a failed npm install)
skips these tests with the reason and how to fix it; with ``CI=true`` it fails them. Set
``OMNISYNC_REAL_SHOPS=0`` to skip them deliberately on a developer machine (ignored under CI).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from omnisync import secrets
from tests.real_shops import servers
from tests.real_shops.shops import MedusaShop, VendureShop

#: Products seeded: Medusa has two variants per product, Vendure one.
MEDUSA_PRODUCTS = 250
VENDURE_PRODUCTS = 500

HOW = (
    "these tests need Node.js 20+ with npm on PATH and, for Medusa, PostgreSQL "
    "(pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start); the first run "
    "installs the servers from the npm registry into ~/.cache/omnisync/real-shops"
)
#: Timings of this session, shown at the end of the run.
TIMINGS: dict[str, float] = {}


def pytest_configure(config: pytest.Config) -> None:
    # A SIGTERM (a CI timeout, `kill`) ends the run like Ctrl-C, so the session fixtures still
    # stop the servers they started.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.real_shop)


def _ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Skip (with how to enable) outside CI; fail under CI=true."""
    if _ci():
        pytest.fail(f"{reason} (CI=true: the real shop servers must run)", pytrace=False)
    pytest.skip(f"{reason} — {HOW}")


def _opted_out() -> None:
    if os.environ.get("OMNISYNC_REAL_SHOPS", "1") == "0" and not _ci():
        pytest.skip("real shop servers disabled by OMNISYNC_REAL_SHOPS=0 (unset it to run them)")


def _install(name: str) -> servers.Install:
    _opted_out()
    try:
        installed = servers.install(name)
    except servers.Unavailable as exc:
        unavailable(str(exc))
        raise
    except servers.InstallError as exc:
        unavailable(str(exc))
        raise
    TIMINGS[f"{name} install"] = installed.seconds
    return installed


@pytest.fixture(scope="session")
def medusa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MedusaShop]:
    """A Medusa server on a fresh clone of the migrated template database, seeded."""
    installed = _install("medusa")
    workdir = tmp_path_factory.mktemp("medusa")
    started = time.monotonic()
    try:
        server = servers.start_medusa(installed, workdir)
    except servers.Unavailable as exc:
        unavailable(str(exc))
        raise
    TIMINGS["medusa template + start"] = time.monotonic() - started
    try:
        seeded = time.monotonic()
        shop = MedusaShop(server.url)
        shop.seed(MEDUSA_PRODUCTS)
        TIMINGS["medusa seed"] = time.monotonic() - seeded
        yield shop
        shop.close()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def vendure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VendureShop]:
    """A Vendure server on a new sql.js file, set up (currency, zone, tax) and seeded."""
    installed = _install("vendure")
    workdir = tmp_path_factory.mktemp("vendure")
    started = time.monotonic()
    server = servers.start_vendure(installed, workdir)
    TIMINGS["vendure start"] = time.monotonic() - started
    try:
        seeded = time.monotonic()
        shop = VendureShop(server.url)
        shop.seed(VENDURE_PRODUCTS)
        TIMINGS["vendure seed"] = time.monotonic() - seeded
        yield shop
        shop.close()
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Configs and connectors register the shops' credentials as secrets (process-wide):
    leave none behind to mask other tests' output."""
    yield
    secrets.forget_all()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.write_sep("-", "real shop servers")
        for what, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{what:<32} {seconds:7.1f} s")
