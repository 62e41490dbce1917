"""Signing up, certificate confirmation, saved sign-in, being signed out from
elsewhere, changing the password: the desktop app against a real server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from client.pinning import PinStore
from client.ui.views.login import USERNAME_RULE
from tests.conftest import ServerProcess

from .harness import PASSWORD, screenshot, sign_up, wait_until


def fingerprint_of(cert: Path) -> str:
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    return hashlib.sha256(
        certificate.public_bytes(serialization.Encoding.DER)
    ).hexdigest()


def test_sign_up_confirms_the_certificate_then_signs_in_by_itself(
    apps, ui_server: ServerProcess, names, tmp_path: Path
) -> None:
    alice = names("alice")
    home = tmp_path / "homes" / "alice"
    app = apps("alice")
    app.call("fill_login", ui_server.address, alice, PASSWORD, True)
    app.call("submit_login")
    wait_until(
        lambda: app.call("login_state")["dialog"] == "FingerprintDialog",
        app,
        what="the fingerprint dialog",
    )
    shown = app.call("fingerprint_shown")
    assert shown.replace(" ", "").replace("\n", "").lower() == fingerprint_of(
        ui_server.cert
    )
    assert PinStore(home / "known_hosts.json").get(ui_server.address) is None
    screenshot("accounts_fingerprint", app)

    app.call("trust_server")
    wait_until(lambda: app.call("screen") == "main", app, what="the main view")
    assert app.call("header") == (alice, "Set a mood…")
    pins = PinStore(home / "known_hosts.json")
    assert pins.get(ui_server.address) == fingerprint_of(ui_server.cert)
    screenshot("accounts_signed_up", app)
    app.close()

    again = apps("alice")
    wait_until(lambda: again.call("screen") == "main", again, what="automatic sign-in")
    assert again.call("header")[0] == alice


def test_a_changed_certificate_is_refused_with_both_fingerprints(
    apps, ui_server: ServerProcess, peers, names, tmp_path: Path
) -> None:
    bob = names("bob")
    peers(bob)
    forged = "ab" * 32
    PinStore(tmp_path / "homes" / "bob" / "known_hosts.json").check(
        ui_server.address, forged
    )
    app = apps("bob")
    app.call("fill_login", ui_server.address, bob, PASSWORD, False)
    app.call("submit_login")
    state = wait_until(
        lambda: (s := app.call("login_state"))["dialog"] and s,
        app,
        what="the certificate warning",
    )
    assert state["dialog"] == "CertificateChangedDialog"
    assert "has changed" in state["message"]
    texts = "\n".join(app.call("dialog_texts"))
    flat = texts.replace(" ", "").replace("\n", "").lower()
    assert forged in flat
    assert fingerprint_of(ui_server.cert) in flat
    assert "CHANGED" in texts
    screenshot("accounts_certificate_changed", app)
    assert app.call("screen") == "login"


def test_signing_in_elsewhere_returns_to_login_with_a_notice(
    apps, ui_server: ServerProcess, peers, names, tmp_path: Path
) -> None:
    carol = names("carol")
    app = apps("carol")
    sign_up(app, ui_server.address, carol)
    assert (tmp_path / "homes" / "carol" / "session.json").exists()

    peers(carol, register=False)
    wait_until(lambda: app.call("screen") == "login", app, what="the login view")
    notices = app.call("toasts")
    assert ("Signed out", "This account signed in on another device.") in notices
    state = app.call("login_state")
    assert state["username"] == carol
    assert state["message"] == "This account signed in on another device."
    assert not (tmp_path / "homes" / "carol" / "session.json").exists()
    screenshot("accounts_signed_in_elsewhere", app)


def test_change_password_sign_out_and_in_again(
    apps, ui_server: ServerProcess, names, tmp_path: Path
) -> None:
    dave = names("dave")
    app = apps("dave")
    sign_up(app, ui_server.address, dave)
    new_password = "a much longer passphrase"
    app.call("change_password", PASSWORD, new_password)
    wait_until(
        lambda: (
            ("Password changed", "Other devices were signed out.") in app.call("toasts")
        ),
        app,
        what="the password change",
    )
    app.call("sign_out")
    wait_until(lambda: app.call("screen") == "login", app, what="signing out")
    assert not (tmp_path / "homes" / "dave" / "session.json").exists()
    assert (
        json.loads((tmp_path / "homes" / "dave" / "config.json").read_text())[
            "username"
        ]
        == dave
    )

    app.call("fill_login", ui_server.address, dave, PASSWORD, False)
    app.call("submit_login")
    wait_until(
        lambda: (
            app.call("login_state")["errors"]
            == {"password": "Wrong username or password."}
        ),
        app,
        what="the refusal of the old password, under the password",
    )
    app.call("fill_login", ui_server.address, dave, new_password, False)
    app.call("submit_login")
    wait_until(lambda: app.call("screen") == "main", app, what="signing in again")


def test_the_sign_up_form_checks_as_you_type_and_says_which_field_is_wrong(
    apps, ui_server: ServerProcess, peers, names
) -> None:
    taken = names("erin")
    peers(taken)
    app = apps("someone")
    # A username the server would refuse is said while typing.
    app.call("fill_login", ui_server.address, "", "", True)
    app.call("type_login", "username", "bo")
    assert app.call("login_state")["errors"] == {}
    app.call("type_login", "username", " b")
    assert app.call("login_state")["errors"] == {"username": USERNAME_RULE}
    app.call("fill_login", ui_server.address, taken, "", True)
    assert app.call("login_state")["errors"] == {}

    # The password rule shows while typing, before any round trip.
    app.call("type_login", "password", "short")
    state = app.call("login_state")
    assert state["hint"] == "At least 8 characters (3 more)"
    assert state["errors"] == {}
    assert not state["password_shown"]
    app.call("toggle_show_password")
    assert app.call("login_state")["password_shown"]
    screenshot("accounts_password_rule", app)
    app.call("submit_login")
    state = app.call("login_state")
    assert state["errors"] == {
        "password": "Use at least 8 characters.",
        "confirm": "The passwords differ.",
    }
    assert not state["working"] and state["dialog"] is None
    app.call("type_login", "password", "xenough")
    assert app.call("login_state")["hint"] == "✓ 8 characters or more"
    app.call("type_login", "confirm", "shortxenough")
    assert app.call("login_state")["errors"] == {}

    # The server's refusal lands under the field it concerns.
    app.call("submit_login")
    wait_until(lambda: app.call("login_state")["dialog"], app, what="the fingerprint")
    app.call("trust_server")
    wait_until(
        lambda: (
            app.call("login_state")["errors"] == {"username": "That username is taken."}
        ),
        app,
        what="the refusal under the username",
    )
    assert app.call("login_field_below", "username")
    assert app.call("login_state")["message"] == ""
    screenshot("accounts_field_error", app)
