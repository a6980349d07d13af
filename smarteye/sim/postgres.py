"""A throw-away PostgreSQL schema on the local server, for tests and the ingest benchmark (the database
peer, as smarteye.sim.broker is the MQTT peer); and a private PostgreSQL server of its own, which fault
tests may stop and start (never the shared one)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from smarteye.sim.ports import free_tcp_port

PG_TEST_URLS = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)


def postgres_admin_url() -> str | None:
    """The first PostgreSQL test URL that accepts a connection ($SMARTEYE_TEST_PG_URL if set), or None."""
    import sqlalchemy as sa

    override = os.environ.get("SMARTEYE_TEST_PG_URL")
    for url in (override,) if override else PG_TEST_URLS:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 2})
        try:
            with engine.connect():
                return url
        except Exception:
            continue
        finally:
            engine.dispose()
    return None


@contextlib.contextmanager
def postgres_schema(admin_url: str) -> Iterator[str]:
    """A fresh, uniquely named schema; yields a URL whose connections use it; dropped afterwards."""
    import sqlalchemy as sa

    schema = f"smarteye_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = sa.engine.make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()


def find_pg_bin() -> Path | None:
    """The directory of initdb/pg_ctl (on PATH, or Debian's /usr/lib/postgresql/<version>/bin)."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


class PrivatePostgres:
    """`initdb` + `pg_ctl start` in a temp dir on a free port, trust auth on 127.0.0.1 only.  PostgreSQL
    refuses to run as root: as root it runs as the `postgres` user (which then owns the temp dir)."""

    def __init__(self) -> None:
        bin_dir = find_pg_bin()
        if bin_dir is None:
            raise FileNotFoundError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.bin = bin_dir
        self.port = free_tcp_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="smarteye-pg-")
        self.data = Path(self._tmp.name) / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self._tmp.name, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self._as, str(self.bin / tool), *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {(done.stderr or done.stdout).strip()[-500:]}")

    def start(self) -> PrivatePostgres:
        options = f"-p {self.port} -k {self._tmp.name} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(Path(self._tmp.name) / "log"), "-w", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`immediate`: like a crash); clients see their connections drop."""
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        self.stop("immediate")
        time.sleep(0.1)
        with contextlib.suppress(OSError):
            self._tmp.cleanup()

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
