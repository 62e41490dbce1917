"""The friend list as the drawer shows it: friends with presence, unread
counts and the newest message of each conversation, and pending requests both
ways, kept current from server events."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from codec.messages import (
    Event,
    Friend,
    FriendAccepted,
    FriendRemoved,
    FriendRequestCancelled,
    FriendRequestDeclined,
    FriendRequested,
    FriendRequestInfo,
    PresenceChanged,
    Profile,
    ProfileChanged,
)

from ...social import Friends
from ...store import LocalMessage
from ..model import FriendEntry, Person, RequestEntry, Roster, UiEvent

__all__ = ["RosterModel", "person"]

ROSTER_EVENTS = (
    FriendAccepted,
    FriendRemoved,
    FriendRequestCancelled,
    FriendRequestDeclined,
    FriendRequested,
    PresenceChanged,
    ProfileChanged,
)


def person(profile: Profile) -> Person:
    """The view model of a profile."""
    return Person(
        username=profile.username,
        display_name=profile.display_name,
        mood=profile.mood,
        avatar=profile.avatar_sha256 or f"icon-{profile.avatar_icon}",
    )


def _request(info: FriendRequestInfo) -> RequestEntry:
    return RequestEntry(person(info.profile), info.note, info.sent_ms)


class RosterModel:
    """Friends and requests of the signed-in user; posts a :class:`Roster`
    snapshot after every change."""

    def __init__(self, friends: Friends, post: Callable[[UiEvent], None]) -> None:
        self._friends_api = friends
        self._post = post
        self.friends: dict[str, Friend] = {}
        self.incoming: dict[str, RequestEntry] = {}
        self.outgoing: dict[str, RequestEntry] = {}
        self.unread: dict[str, int] = {}
        self.latest: dict[str, LocalMessage] = {}
        self._last: Roster | None = None

    async def refresh(self) -> None:
        """Fetch the whole list from the server and publish it."""
        listing = await self._friends_api.list()
        self.friends = {f.profile.username: f for f in listing.friends}
        self.incoming = {r.profile.username: _request(r) for r in listing.incoming}
        self.outgoing = {r.profile.username: _request(r) for r in listing.outgoing}
        self.publish()

    def apply(self, event: Event) -> bool:
        """Apply a friend or presence event; return False if it is not one."""
        if isinstance(event, PresenceChanged):
            friend = self.friends.get(event.username)
            if friend is None:
                return True
            self.friends[event.username] = Friend(
                profile=friend.profile,
                presence=event.presence,
                last_seen_ms=event.last_seen_ms or friend.last_seen_ms,
                since_ms=friend.since_ms,
            )
        elif isinstance(event, ProfileChanged):
            self._apply_profile(event.profile)
        elif isinstance(event, FriendRequested):
            entry = _request(event.request)
            self.incoming[entry.person.username] = entry
        elif isinstance(event, FriendAccepted):
            username = event.friend.profile.username
            self.friends[username] = event.friend
            self.incoming.pop(username, None)
            self.outgoing.pop(username, None)
        elif isinstance(event, FriendRequestDeclined):
            self.outgoing.pop(event.username, None)
        elif isinstance(event, FriendRequestCancelled):
            self.incoming.pop(event.username, None)
        elif isinstance(event, FriendRemoved):
            self.friends.pop(event.username, None)
        else:
            return False
        self.publish()
        return True

    def _apply_profile(self, profile: Profile) -> None:
        """A friend's or requester's new profile replaces the one we held."""
        name = profile.username
        friend = self.friends.get(name)
        if friend is not None:
            self.friends[name] = msgspec.structs.replace(friend, profile=profile)
        for requests in (self.incoming, self.outgoing):
            entry = requests.get(name)
            if entry is not None:
                requests[name] = RequestEntry(
                    person(profile), entry.note, entry.sent_ms
                )

    def set_history(
        self, unread: dict[str, int], latest: dict[str, LocalMessage]
    ) -> None:
        """Unread counts and newest messages by peer, read from the history."""
        self.unread = unread
        self.latest = latest
        self.publish()

    def person(self, username: str) -> Person | None:
        friend = self.friends.get(username)
        return person(friend.profile) if friend is not None else None

    def _entry(self, name: str, friend: Friend) -> FriendEntry:
        last = self.latest.get(name)
        return FriendEntry(
            person(friend.profile),
            friend.presence,
            friend.last_seen_ms,
            self.unread.get(name, 0),
            last.text if last is not None else "",
            last.sent_ms if last is not None else 0,
            last.outgoing if last is not None else False,
        )

    def snapshot(self) -> Roster:
        friends = tuple(
            self._entry(name, friend) for name, friend in sorted(self.friends.items())
        )
        return Roster(
            friends,
            tuple(self.incoming[k] for k in sorted(self.incoming)),
            tuple(self.outgoing[k] for k in sorted(self.outgoing)),
        )

    def publish(self) -> None:
        """Post the current snapshot, unless it equals the last one posted."""
        roster = self.snapshot()
        if roster != self._last:
            self._last = roster
            self._post(roster)
