"""The desktop client's engine: the client core in a process of its own.

The window (:mod:`client.ui`, Tk) starts it and talks to it over one channel
(:mod:`client.engine.channel`): commands down, replies and UI events
(:mod:`client.engine.model`) up, typed by :mod:`client.engine.messages`.
Meeting pictures go through shared memory (:mod:`client.engine.shared`).
Nothing here imports Tk. See ``docs/engine.md``.
"""

from .channel import MAX_FRAME, FrameReader
from .errors import ChannelError, EngineStopped, NotSignedIn, UntrustedCertificate
from .messages import COMMANDS, EVENT_TYPES, Command, Request

__all__ = [
    "COMMANDS",
    "EVENT_TYPES",
    "MAX_FRAME",
    "ChannelError",
    "Command",
    "EngineStopped",
    "FrameReader",
    "NotSignedIn",
    "Request",
    "UntrustedCertificate",
]
