"""The README's promises about how to install and test stay true."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.*?)\n```", text, re.S)


def test_readme_starts_with_install_and_test_commands():
    install, test = _readme_commands()[:2]
    assert "quicmeet-server" in install and "pip install" in install
    assert "pytest" in test


def test_ci_runs_exactly_the_readme_test_command():
    test = _readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci


def test_private_keys_are_never_committed():
    ignore = (ROOT / ".gitignore").read_text().splitlines()
    assert "certs/*" in ignore
