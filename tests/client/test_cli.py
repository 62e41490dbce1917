"""quicmeet-cli as people and scripts use it: a child process per command."""

import io
import json
import os
import subprocess
import sys
import time

from PIL import Image

from client.store import LocalStore
from tests.cli import cli_args
from tests.conftest import PASSWORD, ROOT, start_server_process


def cli(server, home, *args, password=PASSWORD, new_password=None, timeout=30):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUICMEET_")}
    if password is not None:
        env["QUICMEET_PASSWORD"] = password
    if new_password is not None:
        env["QUICMEET_NEW_PASSWORD"] = new_password
    return subprocess.run(
        cli_args(server, home, *args),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def as_json(result):
    assert result.stdout, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_account_commands(server_process, tmp_path):
    home = tmp_path / "alice"
    r = cli(server_process, home, "register", "alice")
    assert r.returncode == 0, r.stderr
    assert "pinned the certificate" in r.stderr
    assert "registered and logged in as alice" in r.stdout

    r = cli(server_process, home, "--json", "whoami", password=None)
    assert r.returncode == 0
    assert as_json(r)["profile"]["username"] == "alice"

    avatar = tmp_path / "me.png"
    buf = io.BytesIO()
    Image.new("RGB", (400, 400), (10, 200, 10)).save(buf, format="PNG")
    avatar.write_bytes(buf.getvalue())
    r = cli(
        server_process,
        home,
        "--json",
        "profile",
        "set",
        "--name",
        "Alice A",
        "--mood",
        "hello",
        "--avatar",
        str(avatar),
    )
    out = as_json(r)
    assert out["ok"] and out["profile"]["display_name"] == "Alice A"
    assert out["profile"]["mood"] == "hello"
    assert out["profile"]["avatar_sha256"]

    bob = tmp_path / "bob"
    assert cli(server_process, bob, "register", "bob").returncode == 0
    r = cli(server_process, bob, "--json", "profile", "show", "alice")
    assert as_json(r)["profile"]["display_name"] == "Alice A"
    r = cli(server_process, bob, "--json", "search", "a")
    assert [u["username"] for u in as_json(r)["users"]] == ["alice"]

    r = cli(server_process, home, "--json", "passwd", new_password="another password")
    assert as_json(r)["changed"] is True
    r = cli(server_process, home, "--json", "login", "alice")
    assert r.returncode == 1
    assert as_json(r)["error"]["name"] == "INVALID_CREDENTIALS"
    r = cli(server_process, home, "login", "alice", password="another password")
    assert r.returncode == 0

    r = cli(server_process, home, "logout")
    assert r.returncode == 0
    r = cli(server_process, home, "--json", "whoami")
    assert r.returncode == 4
    assert "not logged in" in as_json(r)["error"]["message"]


def test_errors_are_clear_and_nonzero(server_process, tmp_path):
    home = tmp_path / "h"
    r = cli(server_process, home, "register", "x")
    assert r.returncode == 1
    assert "3 to 32 characters" in r.stderr
    r = cli(server_process, home, "login", "nobody", password=None)
    assert r.returncode == 2
    assert "QUICMEET_PASSWORD" in r.stderr
    r = cli(server_process, home, "--json", "register", "weakling", password="short")
    assert as_json(r)["error"]["code"] == 206
    r = cli(server_process, home, "profile", "set")
    assert r.returncode in (2, 4)


def test_changed_certificate_is_refused_with_both_fingerprints(
    server_process, tmp_path
):
    home = tmp_path / "h"
    assert cli(server_process, home, "register", "pinner").returncode == 0
    pins = json.loads((home / "known_hosts.json").read_text())
    pins[server_process.address] = "00" * 32
    (home / "known_hosts.json").write_text(json.dumps(pins))
    r = cli(server_process, home, "whoami")
    assert r.returncode == 3
    assert "00" * 32 in r.stderr and "CHANGED" in r.stderr


def test_unreachable_server(tmp_path):
    class Nowhere:
        address = "127.0.0.1:9"

    r = cli(Nowhere(), tmp_path / "h", "--json", "login", "x", timeout=60)
    assert r.returncode == 3
    assert as_json(r)["error"]["name"] == "CONNECTION_FAILED"


def test_listen_prints_events_as_json_lines(server_process, tmp_path):
    home = tmp_path / "h"
    assert cli(server_process, home, "register", "listener").returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUICMEET_")}
    proc = subprocess.Popen(
        cli_args(server_process, home, "listen", "--for", "20"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        other = tmp_path / "other"
        time.sleep(1.5)
        r = cli(server_process, other, "login", "listener")
        assert r.returncode == 0, r.stderr
        line = proc.stdout.readline()
        event = json.loads(line)
        assert event["type"] == "Kicked"
        assert event["reason"] == "signed_in_elsewhere"
    finally:
        proc.kill()
        proc.wait(5)


def test_friend_and_chat_commands(server_process, tmp_path):
    ann, ben = tmp_path / "ann", tmp_path / "ben"
    assert cli(server_process, ann, "register", "ann").returncode == 0
    assert cli(server_process, ben, "register", "ben").returncode == 0
    r = cli(server_process, ann, "friend", "add", "ben", "--note", "it's ann")
    assert r.returncode == 0, r.stderr
    r = cli(server_process, ben, "--json", "friend", "list")
    incoming = as_json(r)["incoming"]
    assert incoming[0]["profile"]["username"] == "ann"
    assert incoming[0]["note"] == "it's ann"
    assert cli(server_process, ben, "friend", "accept", "ann").returncode == 0
    r = cli(server_process, ann, "--json", "send", "ben", "Grüße aus Köln")
    out = as_json(r)
    assert out["ok"] and out["message"]["seq"] == 1
    r = cli(server_process, ben, "--json", "history", "ann")
    assert [m["text"] for m in as_json(r)["messages"]] == ["Grüße aus Köln"]
    r = cli(server_process, ben, "history", "ann", "--search", "koln")
    assert "Grüße aus Köln" in r.stdout
    r = cli(server_process, ann, "history", "ben")
    assert "✓✓" in r.stdout  # delivered to ben's client
    r = cli(server_process, ann, "--json", "send", "nobody", "hi")
    assert r.returncode == 1
    r = cli(server_process, ben, "--json", "friend", "remove", "ann")
    assert as_json(r)["removed"] == "ann"
    r = cli(server_process, ann, "--json", "send", "ben", "still there?")
    assert as_json(r)["error"]["name"] == "FORBIDDEN"


def test_listen_prints_chat_messages(server_process, tmp_path):
    ann, ben = tmp_path / "ann", tmp_path / "ben"
    assert cli(server_process, ann, "register", "ann").returncode == 0
    assert cli(server_process, ben, "register", "ben").returncode == 0
    assert cli(server_process, ann, "friend", "add", "ben").returncode == 0
    assert cli(server_process, ben, "friend", "accept", "ann").returncode == 0
    assert cli(server_process, ann, "send", "ben", "queued while away").returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUICMEET_")}
    proc = subprocess.Popen(
        cli_args(server_process, ben, "listen", "--for", "20"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def next_chat_message():
        while True:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            event = json.loads(line)
            if event["type"] == "ChatMessage":
                return event

    try:
        events = [next_chat_message()]
        assert cli(server_process, ann, "send", "ben", "live").returncode == 0
        events.append(next_chat_message())
        texts = [e["text"] for e in events if e["type"] == "ChatMessage"]
        assert texts == ["queued while away", "live"]
    finally:
        proc.kill()
        proc.wait(5)


def test_desktop_client_without_a_display_says_so(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    r = subprocess.run(
        [sys.executable, "-m", "client.ui", "--home", str(tmp_path / "h")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "cannot open a window" in r.stderr and "Traceback" not in r.stderr


def test_send_while_the_server_is_down_stores_first_and_says_so(
    server_process, tmp_path
):
    ann, ben = tmp_path / "ann", tmp_path / "ben"
    for home, name in ((ann, "ann"), (ben, "ben")):
        assert cli(server_process, home, "register", name).returncode == 0
    assert cli(server_process, ann, "friend", "add", "ben").returncode == 0
    assert cli(server_process, ben, "friend", "accept", "ann").returncode == 0
    server_process.stop()
    r = cli(server_process, ann, "--json", "send", "ben", "written while down")
    assert r.returncode == 5, r.stderr  # stored, not sent yet
    assert as_json(r)["error"]["name"] == "PENDING"
    store = LocalStore(ann / "history.db")
    try:
        assert [(m.text, m.state) for m in store.history("ben", None, 10)] == [
            ("written while down", "pending")
        ]
    finally:
        store.close()
    restarted = start_server_process(tmp_path, port=server_process.port)
    try:
        r = cli(restarted, ann, "--json", "send", "ben", "and after")
        assert r.returncode == 0, r.stderr
        r = cli(restarted, ben, "--json", "history", "ann")
        assert [m["text"] for m in as_json(r)["messages"]] == [
            "written while down",
            "and after",
        ]
    finally:
        restarted.stop()
