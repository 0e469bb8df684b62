"""Install, start and stop the real shop servers the ``real_shops`` tests run against.

Installing
    Each server is an npm project in this folder (``medusa/``, ``vendure/``: a ``package.json``
    with exact versions and its ``package-lock.json``). :func:`install` runs ``npm install`` into
    ``$OMNISYNC_CACHE/real-shops/<name>-<hash>/`` (default ``~/.cache/omnisync``), the hash
    covering the lock file, the package.json and the Node major version, and reuses that
    folder while it exists: only the first run on a machine pays the install. npm gets network
    timeouts and retries of its own; a failed install is tried once more from scratch and then
    fails with the tail of npm's output. A half-finished install is never reused: it is built
    in a temporary folder and renamed when complete, under a file lock (parallel sessions wait).

Starting
    Servers listen on 127.0.0.1 on a free port, telemetry off, output to a log file in the
    session's temporary folder. Medusa runs on the local PostgreSQL: a template database is
    migrated once per install hash (kept, like ``node_modules``) and each session clones it
    (``CREATE DATABASE ... TEMPLATE``, ~0.2 s) into a database named after the session's PID.
    Vendure runs on a new sql.js file per session (schema created at start).

Stopping
    Each server runs in its own process group; :meth:`Server.stop` sends SIGTERM to the group,
    SIGKILL after a timeout, and drops the session's database. The conftest turns SIGTERM to
    pytest into an interrupt, so a CI timeout still stops the servers. A session killed outright
    leaves its servers and database behind: the next session stops the servers (their PIDs are
    recorded under ``<cache>/running/<session pid>-<server pid>``) and drops the databases
    (named after the session's PID) of sessions that no longer run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
#: Where installs (and nothing else) are cached.
CACHE = Path(os.environ.get("OMNISYNC_CACHE", Path.home() / ".cache" / "omnisync")) / "real-shops"
#: The PostgreSQL Medusa uses; the same server the rest of the suite uses.
PG_URL = os.environ.get("OMNISYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
#: Seconds for one ``npm install`` before it is given up.
INSTALL_TIMEOUT = float(os.environ.get("OMNISYNC_NPM_TIMEOUT", "900"))
#: Seconds a server may take to answer its health check.
START_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
#: Files of each server project that are not the package manifest (copied on every start).
PROJECT_FILES = {"medusa": ("medusa-config.ts", "tsconfig.json"), "vendure": ("index.js",)}
MEDUSA_ADMIN = ("admin@example.com", "supersecret")
VENDURE_ADMIN = ("superadmin", "superadmin")

QUIET_ENV = {
    "MEDUSA_DISABLE_TELEMETRY": "true",
    "VENDURE_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "NO_UPDATE_NOTIFIER": "1",
    "npm_config_update_notifier": "false",
    "npm_config_fund": "false",
    "npm_config_audit": "false",
    "NODE_ENV": "development",
}


class Unavailable(Exception):
    """A prerequisite is missing (Node, npm, PostgreSQL); the message says how to get it."""


class InstallError(Exception):
    """``npm install`` failed; the message carries the tail of its output."""


# ------------------------------------------------------------------ prerequisites


def node_major() -> int:
    """The major version of the ``node`` on PATH; Unavailable when there is none."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise Unavailable(
            "Node.js 20+ and npm are needed to run the real Medusa and Vendure servers "
            "(apt-get install nodejs npm)"
        )
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    try:
        major = int(out.strip().lstrip("v").split(".")[0])
    except ValueError:
        raise Unavailable(f"cannot tell the version of {node} ({out.strip()!r})") from None
    if major < 20:
        raise Unavailable(f"Node.js 20+ is needed, {node} is {out.strip()}")
    return major


def _digest(name: str) -> str:
    sha = hashlib.sha256(f"node{node_major()}".encode())
    for part in ("package.json", "package-lock.json"):
        sha.update((HERE / name / part).read_bytes())
    return sha.hexdigest()[:16]


# ------------------------------------------------------------------ installing


@dataclass
class Install:
    name: str
    folder: Path
    digest: str
    #: Seconds the install took in this session (0: reused from the cache).
    seconds: float = 0.0


def install(name: str) -> Install:
    """``npm install`` of the server project ``name`` into the cache, unless it is there already."""
    digest = _digest(name)
    target = CACHE / f"{name}-{digest}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with _locked(CACHE / f"{name}.lock"):
        if (target / ".complete").exists():
            return Install(name, target, digest)
        started = time.monotonic()
        try:
            _npm_install(name, target)
        except InstallError:  # a flaky registry: once more from scratch, then give up
            _npm_install(name, target)
        _prune(name, keep=target)
        return Install(name, target, digest, time.monotonic() - started)


def _npm_install(name: str, target: Path) -> None:
    staging = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for part in ("package.json", "package-lock.json"):
        shutil.copy2(HERE / name / part, staging / part)
    # `npm install` with the committed lock file installs exactly its versions. (Not `npm ci`:
    # npm 11 leaves other platforms' optional packages out of a lock it writes, then `npm ci`
    # refuses that same lock as "not in sync".)
    command = [
        "npm",
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        "--fetch-retries=5",
        "--fetch-retry-mintimeout=2000",
        "--fetch-retry-maxtimeout=60000",
        "--fetch-timeout=120000",
    ]
    log = staging / "npm-install.log"
    try:
        with log.open("w") as out:
            result = subprocess.run(
                command,
                cwd=staging,
                env={**os.environ, **QUIET_ENV},
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=INSTALL_TIMEOUT,
                start_new_session=True,
            )
    except subprocess.TimeoutExpired:
        tail = _tail(log)
        shutil.rmtree(staging, ignore_errors=True)
        raise InstallError(
            f"`npm install` for the {name} server did not finish in {INSTALL_TIMEOUT:.0f} s "
            f"(raise OMNISYNC_NPM_TIMEOUT on a slow network):\n{tail}"
        ) from None
    if result.returncode != 0:
        tail = _tail(log)
        shutil.rmtree(staging, ignore_errors=True)
        raise InstallError(
            f"`npm install` for the {name} server failed (exit {result.returncode}); "
            f"is the npm registry reachable? Last lines:\n{tail}"
        )
    (staging / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def _prune(name: str, keep: Path) -> None:
    """Remove older installs of ``name`` (another lock file's), so the cache does not grow."""
    for old in CACHE.glob(f"{name}-*"):
        if old != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ------------------------------------------------------------------ running


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A server process started by this session."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    #: Seconds from start to a healthy answer.
    started_in: float = 0.0
    #: Run after the process is gone (drop the database).
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after STOP_TIMEOUT; then the cleanups."""
        try:
            _stop_group(self.process)
            _pid_file(self.process.pid).unlink(missing_ok=True)
        finally:
            for step in self.cleanup:
                with contextlib.suppress(Exception):
                    step()

    def log_tail(self) -> str:
        return _tail(self.log, 40)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    pgid = process.pid  # started with start_new_session: its own group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)
    # Children that outlived the leader (none expected) go with the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _pid_file(server_pid: int) -> Path:
    """Names a running server and the session that owns it (for :func:`reap_orphans`)."""
    return CACHE / "running" / f"{os.getpid()}-{server_pid}"


def reap_orphans() -> None:
    """Stop servers whose session died without stopping them (killed with SIGKILL)."""
    folder = CACHE / "running"
    for entry in folder.glob("*-*") if folder.is_dir() else []:
        owner, _, server = entry.name.partition("-")
        if not (owner.isdigit() and server.isdigit()) or _alive(int(owner)):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(server), signal.SIGKILL)
        entry.unlink(missing_ok=True)


def _spawn(
    name: str, command: list[str], cwd: Path, env: dict[str, str], log: Path, health: str
) -> Server:
    reap_orphans()
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **QUIET_ENV, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = Server(name, health.rsplit("/", 1)[0], process, log)
    _pid_file(process.pid).parent.mkdir(parents=True, exist_ok=True)
    _pid_file(process.pid).write_text(" ".join(command))
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the {name} server exited with {process.returncode} while starting:\n"
                f"{server.log_tail()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(health, timeout=2).status_code == 200:
                server.started_in = time.monotonic() - started
                return server
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(
        f"the {name} server did not answer {health} within {START_TIMEOUT:.0f} s:\n"
        f"{server.log_tail()}"
    )


def _copy_project(name: str, folder: Path) -> None:
    for part in PROJECT_FILES[name]:
        shutil.copy2(HERE / name / part, folder / part)


# ------------------------------------------------------------------ Medusa on PostgreSQL


def _pg_connect(database: str | None = None):  # type: ignore[no-untyped-def]
    import psycopg
    import sqlalchemy as sa

    url = sa.make_url(PG_URL)
    try:
        return psycopg.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username or "postgres",
            password=url.password,
            dbname=database or url.database or "postgres",
            autocommit=True,
            connect_timeout=3,
        )
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Unavailable(
            f"Medusa needs PostgreSQL at {url.render_as_string(hide_password=True)} "
            f"($OMNISYNC_TEST_PG_URL): {first}; start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
        ) from None


def _medusa_db_url(database: str) -> str:
    import sqlalchemy as sa

    url = sa.make_url(PG_URL)
    auth = url.username or "postgres"
    if url.password:
        auth += f":{url.password}"
    return f"postgres://{auth}@{url.host or '127.0.0.1'}:{url.port or 5432}/{database}"


def _medusa_cli(folder: Path, args: list[str], database: str, log: Path) -> None:
    env = {**os.environ, **QUIET_ENV, "DATABASE_URL": _medusa_db_url(database)}
    with log.open("ab") as out:
        result = subprocess.run(
            ["node", "node_modules/@medusajs/cli/cli.js", *args],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=600,
            start_new_session=True,
        )
    if result.returncode != 0:
        raise RuntimeError(f"`medusa {' '.join(args)}` failed:\n{_tail(log)}")


def medusa_template(installed: Install, log: Path) -> str:
    """A migrated database with the admin user, made once per install hash and kept."""
    template = f"omnisync_medusa_tpl_{installed.digest}"
    with _locked(CACHE / "medusa-template.lock"), _pg_connect() as pg:
        row = pg.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (template,),
        ).fetchone()
        if row is not None and row[0] == "omnisync-ready":
            return template
        if row is not None:  # a half-made template from a session that died
            pg.execute(f'DROP DATABASE "{template}" WITH (FORCE)')
        for (old,) in pg.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'omnisync_medusa_tpl_%%'"
        ).fetchall():
            pg.execute(f'DROP DATABASE "{old}" WITH (FORCE)')
        pg.execute(f'CREATE DATABASE "{template}"')
        _copy_project("medusa", installed.folder)
        _medusa_cli(installed.folder, ["db:migrate"], template, log)
        email, password = MEDUSA_ADMIN
        _medusa_cli(installed.folder, ["user", "-e", email, "-p", password], template, log)
        pg.execute(f"COMMENT ON DATABASE \"{template}\" IS 'omnisync-ready'")
    return template


def _drop_orphans(pg) -> None:  # type: ignore[no-untyped-def]
    """Drop session databases whose session (PID in the name) is gone."""
    rows = pg.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE 'omnisync_medusa_run_%%'"
    ).fetchall()
    for (name,) in rows:
        try:
            pid = int(name.split("_")[3])
        except (IndexError, ValueError):
            continue
        if not _alive(pid):
            pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_medusa(installed: Install, workdir: Path) -> Server:
    """A Medusa server on a fresh clone of the template database."""
    log = workdir / "medusa.log"
    template = medusa_template(installed, workdir / "medusa-setup.log")
    database = f"omnisync_medusa_run_{os.getpid()}_{os.urandom(3).hex()}"
    with _pg_connect() as pg:
        _drop_orphans(pg)
        pg.execute(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')

    def drop() -> None:
        with _pg_connect() as pg:
            pg.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    _copy_project("medusa", installed.folder)
    port = free_port()
    try:
        server = _spawn(
            "medusa",
            [
                "node",
                "node_modules/@medusajs/cli/cli.js",
                "start",
                "-H",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            installed.folder,
            {"DATABASE_URL": _medusa_db_url(database)},
            log,
            f"http://127.0.0.1:{port}/health",
        )
    except BaseException:
        drop()
        raise
    server.cleanup.append(drop)
    return server


# ------------------------------------------------------------------ Vendure on sql.js


def start_vendure(installed: Install, workdir: Path) -> Server:
    """A Vendure server on a new sql.js database file."""
    _copy_project("vendure", installed.folder)
    database = workdir / "vendure.sqlite"
    database.unlink(missing_ok=True)
    port = free_port()
    username, password = VENDURE_ADMIN
    return _spawn(
        "vendure",
        ["node", "index.js"],
        installed.folder,
        {
            "VENDURE_PORT": str(port),
            "VENDURE_DB": str(database),
            "VENDURE_SUPERADMIN": username,
            "VENDURE_SUPERADMIN_PASSWORD": password,
        },
        workdir / "vendure.log",
        f"http://127.0.0.1:{port}/health",
    )
