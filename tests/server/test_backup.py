"""Backups taken from a running server while clients chat, restored into a new
server that then serves the same users, friends, messages and files."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from client.transfers import Transfers
from codec.messages import FileOffered
from server import ServerApp, cli
from tests.conftest import (
    ROOT,
    address,
    befriend,
    close_member,
    next_of,
    open_member,
    server_config,
    sha256_of,
)


async def _server_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        *args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _in_process(capsys, *args: str) -> tuple[int, str, str]:
    """``quicmeet-server ARGS`` run on a thread of this process (quicker than a
    process of its own, where being separate is not what is tested)."""
    capsys.readouterr()
    code = await asyncio.to_thread(cli.main, list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _db_args(url: str | None) -> list[str]:
    return [] if url is None else ["--db", url]


@pytest.mark.stores
async def test_backup_while_chatting_restores_users_friends_messages_files(
    server, member, tmp_path, db_url, request, capsys
):
    alice = await member("alice")
    bob = await member("bob")
    carol = await open_member(address(server), "carol", tmp_path / "homes" / "carol")
    await befriend(alice, bob)
    await befriend(alice, carol)
    await close_member(carol)  # carol's messages wait on the server for her
    source = tmp_path / "plan.bin"
    source.write_bytes(os.urandom(300_000))
    await Transfers(alice.session, alice.store, tmp_path / "dl-a").send("bob", source)
    offered = await next_of(bob.session, FileOffered)

    acked: list[str] = []
    stop = asyncio.Event()

    async def chatter() -> None:
        n = 0
        while not stop.is_set():
            text = f"line {n}"
            await alice.chat.send("carol", text)
            acked.append(text)
            n += 1
            await asyncio.sleep(0.03)  # under the 50 per second chat limit

    talking = asyncio.create_task(chatter())
    await asyncio.sleep(0.2)
    acked_before = len(acked)
    out = tmp_path / "backup"
    code, stdout, stderr = await _server_cli(
        "backup",
        "--data-dir",
        str(server.config.data_dir),
        *_db_args(db_url),
        "--out",
        str(out),
    )
    stop.set()
    await talking
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["blobs"] == 1 and summary["command"] == "backup"
    assert acked_before > 0

    # A backup never lands on top of another.
    code, _, stderr = await _in_process(
        capsys,
        "backup", "--data-dir", str(server.config.data_dir), *_db_args(db_url),
        "--out", str(out),
    )  # fmt: skip
    assert code == 1 and "not empty" in stderr

    target_url = None
    if db_url is not None:
        target_url = request.getfixturevalue("postgres").create_database()
    restored_dir = tmp_path / "restored"
    restore_args = [
        "restore",
        "--from",
        str(out),
        "--data-dir",
        str(restored_dir / "data"),
        *_db_args(target_url),
    ]
    code, stdout, stderr = await _in_process(capsys, *restore_args)
    assert code == 0, stderr
    # Restoring again would overwrite what is there now: refused.
    code, _, stderr = await _in_process(capsys, *restore_args)
    assert code == 1 and ("already" in stderr)

    app = ServerApp(server_config(restored_dir, db_url=target_url))
    await app.start()
    members = []
    try:
        for name in ("alice", "bob", "carol"):
            members.append(
                await open_member(
                    address(app), name, tmp_path / "again" / name, register=False
                )
            )
        alice2, bob2, carol2 = members
        friends = await alice2.friends.list()
        assert sorted(f.profile.username for f in friends.friends) == ["bob", "carol"]
        await carol2.chat.synced.wait()
        await carol2.chat.drain()
        texts = [m.text for m in await carol2.chat.history("alice", limit=10**6)]
        assert texts == acked[: len(texts)], "restored messages in order, once each"
        assert len(texts) >= acked_before
        got = await Transfers(bob2.session, bob2.store, tmp_path / "dl-b").download(
            offered.file.file_id
        )
        assert got.state == "done"
        assert sha256_of(tmp_path / "dl-b" / "plan.bin") == sha256_of(source)
    finally:
        for m in members:
            await close_member(m)
        await app.shutdown(grace=0)


async def test_restore_refuses_what_is_not_a_backup_or_of_another_store(
    tmp_path, postgres, capsys
):
    code, _, stderr = await _in_process(
        capsys, "restore", "--from", str(tmp_path), "--data-dir", str(tmp_path / "d")
    )
    assert code == 1 and "not a quicmeet backup" in stderr

    app = ServerApp(server_config(tmp_path))
    await app.start()
    await app.shutdown(grace=0)
    code, _, stderr = await _in_process(
        capsys,
        "backup", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert code == 0, stderr
    code, _, stderr = await _in_process(
        capsys,
        "restore", "--from", str(tmp_path / "b"), "--data-dir", str(tmp_path / "d"),
        "--db", postgres.create_database(),
    )  # fmt: skip
    assert code == 1 and "sqlite database" in stderr
    assert not (tmp_path / "d").exists()
