"""A user's client directory (``--home`` / ``QUICMEET_HOME``): settings, pinned
certificates, the session token and, later, local history and transfers.

Several homes side by side let several users run on one machine.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .pinning import PinStore

__all__ = ["Home", "SavedSession", "default_home"]


def default_home() -> Path:
    """Where the client keeps its files when ``--home`` is not given.

    ``$QUICMEET_HOME``, else ``$XDG_DATA_HOME/quicmeet``, else
    ``~/.local/share/quicmeet``.
    """
    env = os.environ.get("QUICMEET_HOME")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "quicmeet"


@dataclass
class SavedSession:
    """The token that resumes a login on ``server`` without a password."""

    server: str
    username: str
    token: bytes
    expires_ms: int


def _write_private(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}")
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


class Home:
    """Files of one client user."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
        self.pins = PinStore(path / "known_hosts.json")

    # -- settings -------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def config(self) -> dict[str, Any]:
        if not self.config_path.exists():
            return {}
        return dict(json.loads(self.config_path.read_text() or "{}"))

    def update_config(self, **values: Any) -> None:
        config = self.config()
        config.update(values)
        _write_private(self.config_path, config)

    # -- session token --------------------------------------------------------

    @property
    def session_path(self) -> Path:
        return self.path / "session.json"

    def saved_session(self) -> SavedSession | None:
        if not self.session_path.exists():
            return None
        data = json.loads(self.session_path.read_text())
        return SavedSession(
            server=data["server"],
            username=data["username"],
            token=base64.b64decode(data["token"]),
            expires_ms=int(data["expires_ms"]),
        )

    def save_session(self, session: SavedSession) -> None:
        _write_private(
            self.session_path,
            {
                "server": session.server,
                "username": session.username,
                "token": base64.b64encode(session.token).decode(),
                "expires_ms": session.expires_ms,
            },
        )

    def clear_session(self) -> None:
        self.session_path.unlink(missing_ok=True)
