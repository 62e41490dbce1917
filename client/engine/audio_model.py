"""What the engine tells the views about sound: the devices the pickers list,
the settings' input level meter, and who speaks in the meeting. Plain,
immutable values as in :mod:`client.engine.model`; nothing here knows Tk or
asyncio."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AudioActivity",
    "AudioDeviceEntry",
    "AudioDeviceList",
    "InputLevel",
    "TEST_TONE",
]

TEST_TONE = "tone"
"""The microphone setting that sends the stamped test buzz instead of a
device (as ``synthetic`` is a camera): for tests and for trying the app alone."""


@dataclass(frozen=True, slots=True)
class AudioDeviceEntry:
    """One sound device as the pickers show it: ``inputs`` and ``outputs``
    are its channel counts (0: not that way)."""

    index: int
    name: str
    inputs: int
    outputs: int
    default_input: bool = False
    default_output: bool = False


@dataclass(frozen=True, slots=True)
class AudioDeviceList:
    """Every device the engine can open; ``problem`` says why sound is off
    (no PortAudio, no device), empty when it is not."""

    devices: tuple[AudioDeviceEntry, ...] = ()
    problem: str = ""

    @property
    def inputs(self) -> list[str]:
        return [d.name for d in self.devices if d.inputs > 0]

    @property
    def outputs(self) -> list[str]:
        return [d.name for d in self.devices if d.outputs > 0]


@dataclass(frozen=True, slots=True)
class InputLevel:
    """The level the watched input ``device`` hears now, in dBov (-127
    silence, 0 full scale), a few times a second; ``problem`` says why the
    device could not be opened (the level is then -127)."""

    device: str
    level_dbov: float
    problem: str = ""


@dataclass(frozen=True, slots=True)
class AudioActivity:
    """Who speaks in the meeting now (usernames, by their packets' voice
    bits) and the active speaker (the loudest voice of the last second or
    so; None before anyone spoke)."""

    speaking: tuple[str, ...] = ()
    active: str | None = None
