"""Scenarios: named network conditions in TOML files, shipped with the package.

A scenario describes both directions of a path and how they change over time::

    description = "RFC 8867 5.1: variable available capacity, single flow"
    duration = "100s"          # how long a test under it should run (optional)

    [link]                     # both directions
    delay = "50ms"
    queue = "300ms"

    [up]                       # client to server only, on top of [link]
    rate = "1mbit"

    [down]                     # server to client only, on top of [link]
    rate = "4mbit"

    [[schedule]]               # a change at a time from the start
    at = "40s"
    direction = "up"           # up, down or both (the default)
    rate = "2.5mbit"

Values are written as the ``quicmeet-netsim`` flags take them (see ``netsim.spec``).
Relative trace paths are resolved against the scenario file's folder.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .config import LinkConfig, ScheduleStep, validate_schedule
from .errors import ParameterError
from .spec import SPEC_FORMS, parse_spec
from .units import DURATION_FORM, parse_duration

__all__ = ["Scenario", "load_scenario", "parse_scenario", "scenario_names"]

_TOP_LEVEL = ("description", "duration", "link", "up", "down", "schedule")
_DIRECTIONS = ("up", "down", "both")


@dataclass(frozen=True)
class Scenario:
    """Both directions of a path, their schedules, and what the scenario is for.

    ``up`` carries client to server, ``down`` server to client. Schedule times are
    seconds from the start of the run.
    """

    name: str
    description: str
    duration_s: float | None
    up: LinkConfig
    down: LinkConfig
    up_schedule: tuple[ScheduleStep, ...] = ()
    down_schedule: tuple[ScheduleStep, ...] = ()


def _shipped() -> dict[str, Any]:
    folder = resources.files(__package__).joinpath("scenarios")
    return {
        entry.name.removesuffix(".toml"): entry
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    }


def scenario_names() -> list[str]:
    """The names of the scenarios shipped with netsim, sorted."""
    return sorted(_shipped())


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a shipped scenario by name (``rfc8867-5.1``) or a scenario file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ParameterError(
                "scenario",
                f"cannot read {path}: {error.strerror}",
                "a readable TOML file",
            ) from None
        return parse_scenario(text, path.stem, base_dir=path.parent)
    shipped = _shipped()
    if str(name_or_path) not in shipped:
        raise ParameterError(
            "scenario",
            f"no scenario named {str(name_or_path)!r}",
            "a .toml file, or one of " + ", ".join(sorted(shipped)),
        )
    entry = shipped[str(name_or_path)]
    with resources.as_file(entry) as real_path:
        return parse_scenario(
            real_path.read_text(encoding="utf-8"),
            real_path.stem,
            base_dir=real_path.parent,
        )


def _table(document: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    table = document.get(key, {})
    if not isinstance(table, dict):
        raise ParameterError(
            f"{name}: {key}", "is not a table", f"a [{key}] table of link parameters"
        )
    return table


def parse_scenario(text: str, name: str, *, base_dir: Path | None = None) -> Scenario:
    """Build a scenario from the text of a TOML file; ``name`` labels messages."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ParameterError(name, f"not valid TOML ({error})", "a TOML file") from None
    for key in document:
        if key not in _TOP_LEVEL:
            raise ParameterError(
                f"{name}: {key}", "unknown field", "one of " + ", ".join(_TOP_LEVEL)
            )
    description = document.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ParameterError(
            f"{name}: description",
            "missing or empty",
            "a sentence saying what it models",
        )
    duration_s = None
    if "duration" in document:
        duration_s = parse_duration(document["duration"], f"{name}: duration")

    def parse(table: dict[str, Any], where: str) -> dict[str, Any]:
        return parse_spec(
            table, label=lambda key: f"{name}: {where} {key}", base_dir=base_dir
        )

    both = parse(_table(document, "link", name), "[link]")
    try:
        up = (
            LinkConfig()
            .replace(**both)
            .replace(**parse(_table(document, "up", name), "[up]"))
        )
        down = (
            LinkConfig()
            .replace(**both)
            .replace(**parse(_table(document, "down", name), "[down]"))
        )
    except ParameterError as error:
        raise ParameterError(
            f"{name}: {error.parameter}", error.problem, error.accepted
        ) from None

    up_schedule: list[ScheduleStep] = []
    down_schedule: list[ScheduleStep] = []
    steps = document.get("schedule", [])
    if not isinstance(steps, list):
        raise ParameterError(
            f"{name}: schedule", "is not an array of tables", "[[schedule]] entries"
        )
    for index, entry in enumerate(steps):
        where = f"schedule[{index}]"
        if not isinstance(entry, dict):
            raise ParameterError(
                f"{name}: {where}", "is not a table", "[[schedule]] entries"
            )
        entry = dict(entry)
        if "at" not in entry:
            raise ParameterError(f"{name}: {where} at", "missing", DURATION_FORM)
        at_s = parse_duration(entry.pop("at"), f"{name}: {where} at")
        direction = entry.pop("direction", "both")
        if direction not in _DIRECTIONS:
            raise ParameterError(
                f"{name}: {where} direction",
                f"unknown direction {direction!r}",
                " or ".join(_DIRECTIONS),
            )
        if not entry:
            raise ParameterError(
                f"{name}: {where}",
                "changes nothing",
                "at, direction and one or more of " + ", ".join(SPEC_FORMS),
            )
        step = ScheduleStep(at_s, parse(entry, where))
        if direction in ("up", "both"):
            up_schedule.append(step)
        if direction in ("down", "both"):
            down_schedule.append(step)
    for config, schedule in ((up, up_schedule), (down, down_schedule)):
        try:
            validate_schedule(config, schedule)
        except ParameterError as error:
            raise ParameterError(
                f"{name}: {error.parameter}", error.problem, error.accepted
            ) from None
    return Scenario(
        name=name,
        description=" ".join(description.split()),
        duration_s=duration_s,
        up=up,
        down=down,
        up_schedule=tuple(up_schedule),
        down_schedule=tuple(down_schedule),
    )
