"""Messages every part of the protocol uses: generic replies and session events."""

from __future__ import annotations

from .base import Event, Reply

__all__ = ["Error", "Kicked", "Ok", "ServerClosing"]


class Ok(Reply):
    """The request succeeded and has nothing more to say."""


class Error(Reply):
    """The request failed.

    ``rid`` is null only when the request's id could not be read (the frame was
    not msgpack, or was too large to look at). ``code`` is a stable number from
    the table of error codes; ``message`` is for people; ``retry_after_ms`` says
    when a throttled or rate-limited request may be tried again.
    """

    code: int
    message: str
    retry_after_ms: int | None = None


class Kicked(Event):
    """This session was ended by the server; the connection closes next.

    ``reason`` is one of ``signed_in_elsewhere`` (a newer login of the same
    account), ``password_changed`` (the password was changed in another session)
    or ``abuse`` (the connection broke the protocol's limits). ``message`` is for
    people. A client must not resume with its token after ``signed_in_elsewhere``
    or ``password_changed``: the token was revoked.
    """

    reason: str
    message: str


class ServerClosing(Event):
    """The server is shutting down; reconnect later (``retry_after_ms`` hints when)."""

    message: str
    retry_after_ms: int = 2000
