"""PostgreSQL as the durable store (``--db postgresql://...``), on a real server.

The services' own tests run on both stores (those marked ``stores``); these
cover what is PostgreSQL's alone: the schema it gets, a restart, bad URLs.
"""

from __future__ import annotations

import pytest

from client import Session
from server import ServerApp, cli
from server.storage import SCHEMA_VERSION, models
from tests.conftest import PASSWORD, server_config


async def test_schema_and_accounts_survive_a_restart(tmp_path, postgres):
    url = postgres.create_database()
    app = ServerApp(server_config(tmp_path, db_url=url))
    host, port = await app.start()
    session = Session(f"{host}:{port}")
    await session.connect()
    await session.register("pgalice", PASSWORD)
    await session.close()
    await app.shutdown(grace=0)

    database = url.rsplit("/", 1)[1]
    tables = {
        row[0]
        for row in postgres.sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'", database
        )
    }
    assert tables == {m._meta.table_name for m in models.MODELS}
    assert not (tmp_path / "data" / "quicmeet.db").exists()

    again = ServerApp(server_config(tmp_path, db_url=url))
    host, port = await again.start()
    try:
        session = Session(f"{host}:{port}")
        await session.connect()
        await session.login("pgalice", PASSWORD)
        await session.close()
        versions = await again.storage.run(
            lambda: [row.version for row in models.SchemaVersion.select()]
        )
        assert versions == [SCHEMA_VERSION]
    finally:
        await again.shutdown(grace=0)


def _fail_to_start(tmp_path, db: str) -> str:
    """Run ``quicmeet-server --db DB`` (in this process) and return why it
    stopped at start."""
    with pytest.raises(SystemExit) as stopped:
        cli.main(
            [
                "--port",
                "0",
                "--data-dir",
                str(tmp_path / "data"),
                "--cert",
                str(tmp_path / "cert.pem"),
                "--key",
                str(tmp_path / "key.pem"),
                "--db",
                db,
                "--log-level",
                "error",
            ]
        )
    assert isinstance(stopped.value.code, str)  # a message: exit status 1
    return stopped.value.code


def test_unreachable_database_and_unknown_scheme_fail_clearly(tmp_path):
    down = _fail_to_start(tmp_path, "postgresql://postgres:hunter2@127.0.0.1:1/nope")
    assert "cannot open the database" in down and "Connection refused" in down
    assert "hunter2" not in down

    odd = _fail_to_start(tmp_path, "mysql://root@localhost/quicmeet")
    assert "unsupported database URL scheme 'mysql'" in odd
