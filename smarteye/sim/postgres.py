"""A throw-away PostgreSQL schema on the local server, for tests and the ingest benchmark (the database
peer, as smarteye.sim.broker is the MQTT peer)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

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
