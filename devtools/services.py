"""Real services for end-to-end tests and benchmarks: a PostgreSQL server (the one named by PHOTO_ASSETS_PG_* or a
throwaway cluster started here), free loopback ports, `dagster dev`, a Redis server and Celery workers, each in its
own process group."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
POSTGRES_HOME_TEMPLATE = PROJECT_DIR / "deploy" / "postgres" / "dagster.yaml"
SQLITE_HOME_TEMPLATE = PROJECT_DIR / "dagster_home" / "dagster.yaml"
# Debian's server binaries (package postgresql-15); scripts/ci_services.sh installs them on a clean machine.
POSTGRES_BIN_DIRS = [Path("/usr/lib/postgresql/15/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]
# PostgreSQL refuses to run as root: a root test run starts it as this (Debian-created) account.
POSTGRES_ACCOUNT = "postgres"
PG_ENV = {
    "user": "PHOTO_ASSETS_PG_USER",
    "password": "PHOTO_ASSETS_PG_PASSWORD",
    "host": "PHOTO_ASSETS_PG_HOST",
    "port": "PHOTO_ASSETS_PG_PORT",
    "database": "PHOTO_ASSETS_PG_DB",
}
# Tests throw their clusters away, so surviving an OS crash is worth nothing here; commits still reach the kernel
# before they return, so a server stopped with `immediate` (as in a crash of the server alone) loses no commit.
THROWAWAY_SERVER_SETTINGS = ["fsync=off", "full_page_writes=off"]
# `dagster dev` starts a webserver, a daemon and a code server: on 2 busy cores that takes a while.
DAGSTER_DEV_START_TIMEOUT_S = 180
DAGSTER_DEV_STOP_TIMEOUT_S = 30
# One backfill of many partitions, as the UI's "Materialize all" launches it.
LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on PartitionKeysNotFoundError { message }
  }
}"""


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(message: str) -> None:
    """A missing service fails the test in CI (the CI script installs it) and skips it elsewhere, saying why."""
    import pytest

    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on the loopback interface that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- PostgreSQL ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    database: str
    socket_dir: str | None = None  # where its Unix socket is, when it runs on this machine

    def env(self, via_socket: bool = False) -> dict[str, str]:
        """The variables deploy/postgres/dagster.yaml reads. Through the socket, the host is left empty and libpq
        takes the socket folder from PGHOST: no TCP, and no SCRAM exchange on each of Dagster's connections."""
        variables = {variable: str(getattr(self, field)) for field, variable in PG_ENV.items()}
        if via_socket:
            variables.update({PG_ENV["host"]: "", "PGHOST": self.socket_dir})
        return variables

    def connect(self, database: str | None = None):
        import psycopg2

        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=database or self.database
        )

    def query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, parameters)
                return cursor.fetchall()
        finally:
            connection.close()


def server_from_env() -> PostgresServer | None:
    """The server named by PHOTO_ASSETS_PG_HOST (and the other PHOTO_ASSETS_PG_* variables), if any."""
    if not os.environ.get(PG_ENV["host"]):
        return None
    return PostgresServer(
        host=os.environ[PG_ENV["host"]],
        port=int(os.environ.get(PG_ENV["port"]) or 5432),
        user=os.environ.get(PG_ENV["user"]) or "postgres",
        password=os.environ.get(PG_ENV["password"], ""),
        database=os.environ.get(PG_ENV["database"]) or "postgres",
    )


def _account_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def postgres_bin_dir() -> Path | None:
    return next((folder for folder in POSTGRES_BIN_DIRS if (folder / "initdb").is_file()), None)


class ThrowawayCluster:
    """A PostgreSQL cluster in a temporary folder, listening on a free loopback port; stop() and start() again
    keep its data, close() deletes it."""

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="photo-assets-pg-"))
        self.data_dir = self.root / "data"
        self.log_file = self.root / "server.log"
        self.server = PostgresServer(
            "127.0.0.1", free_port(), "photo_assets", uuid.uuid4().hex, "postgres", socket_dir=str(self.root)
        )
        self._as_server_account = os.geteuid() == 0
        if self._as_server_account:
            shutil.chown(self.root, user=POSTGRES_ACCOUNT)
        password_file = self.root / "password"
        password_file.write_text(self.server.password)
        if self._as_server_account:
            shutil.chown(password_file, user=POSTGRES_ACCOUNT)
        self._run(
            "initdb", "-D", self.data_dir, "-U", self.server.user, f"--pwfile={password_file}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        password_file.unlink()

    def _run(self, program: str, *arguments) -> None:
        prefix = ["runuser", "-u", POSTGRES_ACCOUNT, "--"] if self._as_server_account else []
        command = [*prefix, str(self.bin_dir / program), *map(str, arguments)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.root)
        if result.returncode:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}{log[-3000:]}")

    def start(self) -> None:
        options = f"-p {self.server.port} -k {self.root} -c listen_addresses={self.server.host} " + " ".join(
            f"-c {setting}" for setting in THROWAWAY_SERVER_SETTINGS
        )
        self._run("pg_ctl", "-D", self.data_dir, "-l", self.log_file, "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast` is an orderly shutdown that ends every session; `immediate` is what a crash looks like."""
        self._run("pg_ctl", "-D", self.data_dir, "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()

    def close(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def throwaway_cluster() -> Iterator[ThrowawayCluster]:
    """A running throwaway cluster, or a skip (a failure in CI) when the server binaries are missing."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None or (os.geteuid() == 0 and not _account_exists(POSTGRES_ACCOUNT)):
        unavailable(
            "no PostgreSQL server: install Debian's postgresql-15 (scripts/ci_services.sh does) or name a server "
            f"with {', '.join(PG_ENV.values())}"
        )
    cluster = ThrowawayCluster(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """The server named by the environment when given, else a throwaway cluster for as long as the block runs."""
    named = server_from_env()
    if named is not None:
        yield named
        return
    with throwaway_cluster() as cluster:
        yield cluster.server


@contextmanager
def fresh_database(server: PostgresServer) -> Iterator[PostgresServer]:
    """A new, empty database on `server` (the user needs CREATEDB), dropped afterwards."""
    name = f"photo_assets_test_{uuid.uuid4().hex[:12]}"
    _maintenance(server, f'CREATE DATABASE "{name}"')
    try:
        yield replace(server, database=name)
    finally:
        _maintenance(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_env(home: Path, database: PostgresServer) -> dict[str, str]:
    """This process's environment, with the Postgres instance in `home` on `database`."""
    return {**os.environ, **database.env(), "DAGSTER_HOME": str(home)}


@contextmanager
def instance_at(home: Path, database: PostgresServer, monkeypatch) -> Iterator:
    """The instance the commands used, opened here the way every Dagster process opens it: from DAGSTER_HOME."""
    import dagster as dg

    with monkeypatch.context() as patch:
        for variable, value in database.env().items():
            patch.setenv(variable, value)
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            yield instance
        finally:
            instance.dispose()


def _maintenance(server: PostgresServer, statement: str) -> None:
    connection = server.connect()
    try:
        connection.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


# Debian's Chromium (scripts/ci_services.sh installs it); Playwright drives it, it never downloads a browser.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
# The longest a `photo-assets` command of a test may take (a first run of the face models on a small library).
CLI_TIMEOUT_S = 1800
CLI_COMMAND = [sys.executable, "-m", "photo_assets.cli"]


def photo_assets_cli(env: dict[str, str], *args: str, timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess:
    """`photo-assets ARGS` in a process of its own, as a user runs it, with the environment `env`."""
    return subprocess.run(
        [*CLI_COMMAND, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def photo_assets_run(library: Path, data: Path, home: Path, *flags: str) -> subprocess.CompletedProcess:
    """`photo-assets run` on a library, with a Dagster home of its own (made when missing)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    return photo_assets_cli(env, "run", "--library", str(library), "--data", str(data), *flags)


def dagster_home(folder: Path, template: Path) -> Path:
    """A DAGSTER_HOME holding a copy of one of the project's shipped dagster.yaml files."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, folder / "dagster.yaml")
    return folder


def start_process_group(command: list, env: dict[str, str], log_file: Path) -> subprocess.Popen:
    """`command` in a process group of its own (so that stopping it stops every process it starts), its output in
    `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "wb") as log:
        return subprocess.Popen(
            [str(part) for part in command], cwd=PROJECT_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def stop_process_group(process: subprocess.Popen, timeout_s: float) -> None:
    """SIGTERM to the group, time to shut down cleanly, then SIGKILL to whatever is left of it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def wait_for_line(process: subprocess.Popen, log_file: Path, text: str, timeout_s: float) -> None:
    """Until the process's log shows `text`: a clear error, with the log, if it exits or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while text not in log_file.read_text(errors="replace"):
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}:\n{_tail(log_file)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{process.args} did not say {text!r} within {timeout_s} s:\n{_tail(log_file)}")
        time.sleep(0.5)


def _tail(log_file: Path, characters: int = 5000) -> str:
    return log_file.read_text(errors="replace")[-characters:]


# -- Redis and Celery ------------------------------------------------------------------------------------------------

# Debian's server (package redis-server); scripts/ci_services.sh installs it on a clean machine.
REDIS_SERVER = Path("/usr/bin/redis-server")
# A broker for one test: loopback only, nothing written to disk, in the foreground so the test owns its process.
REDIS_OPTIONS = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]
REDIS_READY = "Ready to accept connections"
REDIS_START_TIMEOUT_S = 30
# The workers' config as shipped: the broker from PHOTO_ASSETS_CELERY_BROKER.
CELERY_WORKER_CONFIG = PROJECT_DIR / "deploy" / "celery" / "celery.yaml"
# A worker imports Dagster, opens the instance and connects to the broker: a while on 2 busy cores.
CELERY_WORKER_START_TIMEOUT_S = 180
# A worker finishing its step on SIGTERM gets this long before the rest of its group is killed.
SERVICE_STOP_TIMEOUT_S = 30


@contextmanager
def redis_server(log_file: Path) -> Iterator[str]:
    """A Redis server on a free loopback port for as long as the block runs; yields its URL. No server installed is
    a skip saying so, and a failure in CI, which installs it (scripts/ci_services.sh), as for PostgreSQL."""
    if not REDIS_SERVER.is_file():
        unavailable(f"no Redis server: install Debian's redis-server ({REDIS_SERVER}; scripts/ci_services.sh does)")
    port = free_port()
    process = start_process_group([REDIS_SERVER, "--port", port, *REDIS_OPTIONS], dict(os.environ), log_file)
    try:
        wait_for_line(process, log_file, REDIS_READY, REDIS_START_TIMEOUT_S)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process_group(process, SERVICE_STOP_TIMEOUT_S)


@contextmanager
def celery_worker(name: str, queue: str, env: dict[str, str], log_file: Path, *celery_options: str) -> Iterator[str]:
    """`dagster-celery worker start` serving `queue`, as docs/scale-out.md starts it, until the block ends; yields
    the worker's Celery name (`name@host`), which Dagster records with every step it runs."""
    scripts = Path(sys.executable).parent
    command = [
        scripts / "dagster-celery", "worker", "start", "-A", "dagster_celery.app",
        "-y", CELERY_WORKER_CONFIG, "-q", queue, "-n", name, "--", *celery_options,
    ]  # fmt: skip
    # dagster-celery starts `celery` from PATH, as in an activated venv.
    path = os.pathsep.join([str(scripts), env.get("PATH", os.defpath)])
    process = start_process_group(command, {**env, "PATH": path}, log_file)
    node = f"{name}@{socket.gethostname()}"
    try:
        wait_for_line(process, log_file, f"{node} ready.", CELERY_WORKER_START_TIMEOUT_S)
        yield node
    finally:
        stop_process_group(process, SERVICE_STOP_TIMEOUT_S)


# -- dagster dev -----------------------------------------------------------------------------------------------------


class DagsterDev:
    """`dagster dev` for this project, in its own process group so that stopping it stops the webserver, the daemon,
    the code server and every run it launched."""

    def __init__(self, env: dict[str, str], log_file: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = log_file
        command = [PROJECT_DIR / ".venv" / "bin" / "dagster", "dev", "--host", "127.0.0.1", "--port", self.port]
        self.process = start_process_group(command, {**os.environ, **env}, log_file)

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace")

    def log_tail(self, characters: int = 5000) -> str:
        return _tail(self.log_file, characters)

    def wait_until_up(self, timeout_s: float = DAGSTER_DEV_START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dagster dev exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if self.graphql("{ version }").get("version"):
                    return
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(1)
        raise TimeoutError(f"dagster dev did not answer on {self.url} within {timeout_s} s:\n{self.log_tail()}")

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as error:  # a malformed query: the body says what is wrong
            raise ValueError(f"GraphQL HTTP {error.code}: {error.read().decode(errors='replace')[:2000]}") from error
        if answer.get("errors"):
            raise ValueError(f"GraphQL errors: {answer['errors']}")
        return answer["data"]

    def stop(self) -> None:
        stop_process_group(self.process, DAGSTER_DEV_STOP_TIMEOUT_S)


@contextmanager
def dagster_dev(env: dict[str, str], log_file: Path) -> Iterator[DagsterDev]:
    server = DagsterDev(env, log_file)
    try:
        server.wait_until_up()
        yield server
    finally:
        server.stop()
