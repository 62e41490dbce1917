"""Trust on first use for server certificates, as SSH's known_hosts with accept-new.

The first connection to an address records the SHA-256 fingerprint of the
certificate it presented; every later connection must present the same one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .errors import CertificateMismatch

__all__ = ["PinStore"]


class PinStore:
    """Fingerprints per server address, kept in one JSON file (``None``: memory)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._pins: dict[str, str] = {}
        if path is not None and path.exists():
            self._pins = dict(json.loads(path.read_text() or "{}"))

    def get(self, address: str) -> str | None:
        return self._pins.get(address)

    def check(self, address: str, fingerprint: str) -> bool:
        """Accept ``fingerprint`` for ``address``; return True if newly pinned.

        Raises :class:`CertificateMismatch` when a different one is pinned.
        """
        pinned = self._pins.get(address)
        if pinned is None:
            self._pins[address] = fingerprint
            self._save()
            return True
        if pinned != fingerprint:
            raise CertificateMismatch(address, pinned, fingerprint)
        return False

    def forget(self, address: str) -> None:
        if self._pins.pop(address, None) is not None:
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".known_hosts")
        with os.fdopen(fd, "w") as fh:
            json.dump(self._pins, fh, indent=1, sort_keys=True)
        os.replace(tmp, self.path)
