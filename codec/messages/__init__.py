"""Every message of the control protocol, grouped by the service that owns it.

``REQUESTS``, ``STREAM_REQUESTS``, ``REPLIES`` and ``EVENTS`` list them; the
decoders in :mod:`codec.protocol` and the reference in ``docs/protocol.md`` are
built from these tuples, so a message missing here exists nowhere.
"""

from __future__ import annotations

from .accounts import (
    AvatarImage,
    ChangePassword,
    GetAvatar,
    GetProfile,
    LoggedIn,
    Login,
    Logout,
    Profile,
    ProfileInfo,
    PutAvatar,
    Register,
    Registered,
    Resume,
    SearchUsers,
    UpdateProfile,
    UserPage,
)
from .base import Event, Message, Reply, Request, StreamRequest
from .core import Error, Kicked, Ok, ServerClosing

REQUESTS: tuple[type[Request], ...] = (
    Register,
    Login,
    Resume,
    Logout,
    ChangePassword,
    GetProfile,
    UpdateProfile,
    GetAvatar,
    SearchUsers,
)
STREAM_REQUESTS: tuple[type[StreamRequest], ...] = (PutAvatar,)
REPLIES: tuple[type[Reply], ...] = (
    Ok,
    Error,
    Registered,
    LoggedIn,
    ProfileInfo,
    AvatarImage,
    UserPage,
)
EVENTS: tuple[type[Event], ...] = (Kicked, ServerClosing)
RECORDS: tuple[type, ...] = (Profile,)
"""Structs that appear inside messages."""

__all__ = [
    "EVENTS",
    "RECORDS",
    "REPLIES",
    "REQUESTS",
    "STREAM_REQUESTS",
    "AvatarImage",
    "ChangePassword",
    "Error",
    "Event",
    "GetAvatar",
    "GetProfile",
    "Kicked",
    "LoggedIn",
    "Login",
    "Logout",
    "Message",
    "Ok",
    "Profile",
    "ProfileInfo",
    "PutAvatar",
    "Register",
    "Registered",
    "Reply",
    "Request",
    "Resume",
    "SearchUsers",
    "ServerClosing",
    "StreamRequest",
    "UpdateProfile",
    "UserPage",
]
