"""Friends and presence: requests (also to offline users), friendships, blocks,
and online/away/offline and profile changes pushed to online friends.

Friend sets of online users are cached in memory (``friends_of``), so the chat
service can authorise a message without touching the database.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import peewee

from codec.errors import ErrorCode
from codec.messages import (
    BlockUser,
    CancelFriendRequest,
    Friend,
    FriendAccepted,
    FriendList,
    FriendRemoved,
    FriendRequestCancelled,
    FriendRequestDeclined,
    FriendRequested,
    FriendRequestInfo,
    ListFriends,
    Ok,
    PresenceChanged,
    Profile,
    ProfileChanged,
    RemoveFriend,
    RequestFriend,
    RespondFriend,
    SetPresence,
    UnblockUser,
)
from codec.messages.base import Event

from .accounts import profile_of
from .cluster import RemoteUser
from .errors import ServiceError
from .storage.models import Block, FriendRequest, Friendship, User
from .storage.prepared import Prepared

if TYPE_CHECKING:
    from .connection import Account, ClientConnection
    from .context import ServerContext
    from .router import Router

__all__ = ["SocialService"]


class SocialService:
    """Handles friend requests, friendships, blocks and presence."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.friends_of: dict[int, dict[int, str]] = {}
        """For each online user: friend id -> friend username."""
        self.status: dict[int, str] = {}
        """For each online user: ``online`` or ``away``."""

    def register_handlers(self, router: Router) -> None:
        router.handle(RequestFriend, self.request_friend)
        router.handle(RespondFriend, self.respond_friend)
        router.handle(CancelFriendRequest, self.cancel_request)
        router.handle(RemoveFriend, self.remove_friend)
        router.handle(BlockUser, self.block)
        router.handle(UnblockUser, self.unblock)
        router.handle(ListFriends, self.list_friends)
        router.handle(SetPresence, self.set_presence)
        self.ctx.sessions.on_session(self.session_started, self.session_ended)

    def friend_id(self, user_id: int, username: str, why: str) -> int:
        """The id of ``user_id``'s friend ``username``; raises ``FORBIDDEN``
        (ending the message with ``why``) when they are not friends."""
        name = username.lower()
        for friend_id, friend_name in self.friends_of.get(user_id, {}).items():
            if friend_name == name:
                return friend_id
        raise ServiceError(ErrorCode.FORBIDDEN, f"{username} is not your friend; {why}")

    # -- presence -------------------------------------------------------------

    def presence_of(self, user_id: int) -> str:
        conn = self.ctx.presence.connection(user_id)
        if conn is None:
            return "offline"
        if isinstance(conn, RemoteUser):
            return conn.status
        return self.status.get(user_id, "online")

    def push(self, user_id: int, event: Event) -> None:
        """Send ``event`` to ``user_id`` if they are online."""
        conn = self.ctx.presence.connection(user_id)
        if conn is not None:
            conn.push(event)

    def _broadcast_presence(self, user_id: int, username: str, last_seen: int) -> None:
        event = PresenceChanged(
            username=username,
            presence=self.presence_of(user_id),
            last_seen_ms=last_seen,
        )
        for friend_id in self.friends_of.get(user_id, {}):
            self.push(friend_id, event)

    def announce_profile(self, user_id: int, profile: Profile) -> None:
        """Tell the online friends of ``user_id`` (online here) that their
        profile is now ``profile``."""
        event = ProfileChanged(profile=profile)
        for friend_id in self.friends_of.get(user_id, {}):
            self.push(friend_id, event)

    async def session_started(self, conn: ClientConnection) -> None:
        account = conn.account
        assert account is not None
        user_id = account.user_id

        def load() -> tuple[dict[int, str], list[FriendRequest]]:
            return _friends_of(user_id), _REQUESTS_TO(user_id)

        friends, pending = await self.ctx.storage.run(load)
        if conn.account is not account:
            return
        self.friends_of[user_id] = friends
        self.status[user_id] = "online"
        self._broadcast_presence(user_id, account.username, self.ctx.clock.wall_ms())
        for request in pending:
            conn.push(
                FriendRequested(
                    request=FriendRequestInfo(
                        profile=profile_of(request.sender),
                        note=request.note,
                        sent_ms=request.sent_ms,
                    )
                )
            )

    async def reload_friends(self, user_id: int) -> None:
        """Read the friend list of ``user_id`` (online here) again: it changed
        on another node."""

        friends = await self.ctx.storage.run(_friends_of, user_id)
        if user_id in self.friends_of:
            self.friends_of[user_id] = friends

    def session_ended(self, conn: ClientConnection, account: Account) -> None:
        user_id = account.user_id
        seen = self.ctx.clock.wall_ms()
        self._broadcast_presence(user_id, account.username, seen)
        self.friends_of.pop(user_id, None)
        self.status.pop(user_id, None)

        def store() -> None:
            User.update(last_seen_ms=seen).where(User.id == user_id).execute()

        asyncio.get_running_loop().create_task(self.ctx.storage.run(store))

    async def set_presence(self, conn: ClientConnection, req: SetPresence) -> Ok:
        account = conn.account
        assert account is not None
        if self.status.get(account.user_id) != req.status:
            self.status[account.user_id] = req.status
            self.ctx.presence.set_status(account.user_id, req.status)
            self._broadcast_presence(
                account.user_id, account.username, self.ctx.clock.wall_ms()
            )
        return Ok(rid=req.rid)

    # -- friend list ------------------------------------------------------------

    def _friend(self, user: User, since_ms: int = 0) -> Friend:
        presence = self.presence_of(user.id)
        return Friend(
            profile=profile_of(user),
            presence=presence,  # type: ignore[arg-type]
            last_seen_ms=0 if presence != "offline" else user.last_seen_ms,
            since_ms=since_ms,
        )

    async def list_friends(
        self, conn: ClientConnection, req: ListFriends
    ) -> FriendList:
        assert conn.account is not None
        me = conn.account.user_id

        def load():  # type: ignore[no-untyped-def]
            friends = list(
                Friendship.select(Friendship, User)
                .join(User, on=Friendship.friend)
                .where(Friendship.user == me)
                .order_by(User.username)
            )
            incoming = list(
                FriendRequest.select(FriendRequest, User)
                .join(User, on=FriendRequest.sender)
                .where(FriendRequest.recipient == me)
                .order_by(FriendRequest.sent_ms)
            )
            outgoing = list(
                FriendRequest.select(FriendRequest, User)
                .join(User, on=FriendRequest.recipient)
                .where(FriendRequest.sender == me)
                .order_by(FriendRequest.sent_ms)
            )
            blocked = [
                b.blocked.username
                for b in Block.select(Block, User)
                .join(User, on=Block.blocked)
                .where(Block.user == me)
            ]
            return friends, incoming, outgoing, blocked

        friends, incoming, outgoing, blocked = await self.ctx.storage.run(load)
        return FriendList(
            rid=req.rid,
            friends=[self._friend(row.friend, row.since_ms) for row in friends],
            incoming=[
                FriendRequestInfo(
                    profile=profile_of(r.sender), note=r.note, sent_ms=r.sent_ms
                )
                for r in incoming
            ],
            outgoing=[
                FriendRequestInfo(
                    profile=profile_of(r.recipient), note=r.note, sent_ms=r.sent_ms
                )
                for r in outgoing
            ],
            blocked=sorted(blocked),
        )

    # -- requests -------------------------------------------------------------

    async def _other(self, conn: ClientConnection, username: str) -> tuple[int, User]:
        assert conn.account is not None
        me = conn.account.user_id
        name = username.lower()
        other = await self.ctx.storage.run(
            lambda: User.get_or_none(User.username == name)
        )
        if other is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no user {username!r}")
        if other.id == me:
            raise ServiceError(ErrorCode.INVALID_ARGUMENT, "that is you")
        return me, other

    def _befriend(self, a: int, a_name: str, b: int, b_name: str) -> None:
        """Record a new friendship in the caches of whoever is online."""
        if a in self.friends_of:
            self.friends_of[a][b] = b_name
        if b in self.friends_of:
            self.friends_of[b][a] = a_name

    def _unfriend(self, a: int, b: int) -> None:
        self.friends_of.get(a, {}).pop(b, None)
        self.friends_of.get(b, {}).pop(a, None)

    async def request_friend(self, conn: ClientConnection, req: RequestFriend) -> Ok:
        me, other = await self._other(conn, req.username)
        note = req.note.strip()
        now = self.ctx.clock.wall_ms()

        def apply() -> str:
            with User._meta.database.atomic():
                if (
                    Block.select()
                    .where(
                        ((Block.user == me) & (Block.blocked == other.id))
                        | ((Block.user == other.id) & (Block.blocked == me))
                    )
                    .exists()
                ):
                    return "blocked"
                if (
                    Friendship.select()
                    .where((Friendship.user == me) & (Friendship.friend == other.id))
                    .exists()
                ):
                    return "friends"
                reverse = FriendRequest.get_or_none(
                    (FriendRequest.sender == other.id) & (FriendRequest.recipient == me)
                )
                if reverse is not None:
                    reverse.delete_instance()
                    Friendship.insert_many(
                        [
                            {"user": me, "friend": other.id, "since_ms": now},
                            {"user": other.id, "friend": me, "since_ms": now},
                        ]
                    ).execute()
                    return "accepted"
                try:
                    FriendRequest.create(
                        sender=me, recipient=other.id, note=note, sent_ms=now
                    )
                except peewee.IntegrityError:
                    return "pending"
                return "requested"

        outcome = await self.ctx.storage.run(apply)
        account = conn.account
        assert account is not None
        if outcome == "blocked":
            raise ServiceError(
                ErrorCode.FORBIDDEN, f"you cannot add {other.username} as a friend"
            )
        if outcome == "friends":
            raise ServiceError(
                ErrorCode.CONFLICT, f"you are already friends with {other.username}"
            )
        if outcome == "accepted":
            await self._announce_friendship(me, other.id, now)
        elif outcome == "requested":
            me_user = await self.ctx.storage.run(User.get_by_id, me)
            self.push(
                other.id,
                FriendRequested(
                    request=FriendRequestInfo(
                        profile=profile_of(me_user), note=note, sent_ms=now
                    )
                ),
            )
        return Ok(rid=req.rid)

    async def _announce_friendship(self, a: int, b: int, since: int) -> None:
        users = await self.ctx.storage.run(
            lambda: {u.id: u for u in User.select().where(User.id.in_([a, b]))}
        )
        self._befriend(a, users[a].username, b, users[b].username)
        self.push(a, FriendAccepted(friend=self._friend(users[b], since)))
        self.push(b, FriendAccepted(friend=self._friend(users[a], since)))
        if self.ctx.presence.connection(a) is not None:
            self.push(b, self._presence_event(users[a]))
        if self.ctx.presence.connection(b) is not None:
            self.push(a, self._presence_event(users[b]))

    def _presence_event(self, user: User) -> PresenceChanged:
        return PresenceChanged(
            username=user.username,
            presence=self.presence_of(user.id),  # type: ignore[arg-type]
            last_seen_ms=user.last_seen_ms,
        )

    async def respond_friend(self, conn: ClientConnection, req: RespondFriend) -> Ok:
        me, other = await self._other(conn, req.username)
        now = self.ctx.clock.wall_ms()

        def apply() -> bool:
            with User._meta.database.atomic():
                deleted = (
                    FriendRequest.delete()
                    .where(
                        (FriendRequest.sender == other.id)
                        & (FriendRequest.recipient == me)
                    )
                    .execute()
                )
                if not deleted:
                    return False
                if req.accept:
                    Friendship.insert_many(
                        [
                            {"user": me, "friend": other.id, "since_ms": now},
                            {"user": other.id, "friend": me, "since_ms": now},
                        ]
                    ).on_conflict_ignore().execute()
                return True

        if not await self.ctx.storage.run(apply):
            raise ServiceError(
                ErrorCode.NOT_FOUND, f"no friend request from {other.username}"
            )
        account = conn.account
        assert account is not None
        if req.accept:
            await self._announce_friendship(me, other.id, now)
        else:
            self.push(other.id, FriendRequestDeclined(username=account.username))
        return Ok(rid=req.rid)

    async def cancel_request(
        self, conn: ClientConnection, req: CancelFriendRequest
    ) -> Ok:
        me, other = await self._other(conn, req.username)
        deleted = await self.ctx.storage.run(
            lambda: (
                FriendRequest.delete()
                .where(
                    (FriendRequest.sender == me) & (FriendRequest.recipient == other.id)
                )
                .execute()
            )
        )
        if not deleted:
            raise ServiceError(
                ErrorCode.NOT_FOUND, f"no pending request to {other.username}"
            )
        assert conn.account is not None
        self.push(other.id, FriendRequestCancelled(username=conn.account.username))
        return Ok(rid=req.rid)

    def _sever(self, me: int, other: int) -> int:
        """Delete the friendship both ways (on the database thread)."""
        return int(
            Friendship.delete()
            .where(
                ((Friendship.user == me) & (Friendship.friend == other))
                | ((Friendship.user == other) & (Friendship.friend == me))
            )
            .execute()
        )

    def _announce_removal(self, me: int, me_name: str, other: User) -> None:
        self._unfriend(me, other.id)
        self.push(me, FriendRemoved(username=other.username))
        self.push(other.id, FriendRemoved(username=me_name))

    async def remove_friend(self, conn: ClientConnection, req: RemoveFriend) -> Ok:
        me, other = await self._other(conn, req.username)
        if not await self.ctx.storage.run(self._sever, me, other.id):
            raise ServiceError(
                ErrorCode.NOT_FOUND, f"{other.username} is not your friend"
            )
        assert conn.account is not None
        self._announce_removal(me, conn.account.username, other)
        return Ok(rid=req.rid)

    async def block(self, conn: ClientConnection, req: BlockUser) -> Ok:
        me, other = await self._other(conn, req.username)

        def apply() -> int:
            with User._meta.database.atomic():
                Block.insert(user=me, blocked=other.id).on_conflict_ignore().execute()
                FriendRequest.delete().where(
                    (
                        (FriendRequest.sender == me)
                        & (FriendRequest.recipient == other.id)
                    )
                    | (
                        (FriendRequest.sender == other.id)
                        & (FriendRequest.recipient == me)
                    )
                ).execute()
                return self._sever(me, other.id)

        severed = await self.ctx.storage.run(apply)
        assert conn.account is not None
        if severed:
            self._announce_removal(me, conn.account.username, other)
        return Ok(rid=req.rid)

    async def unblock(self, conn: ClientConnection, req: UnblockUser) -> Ok:
        me, other = await self._other(conn, req.username)
        deleted = await self.ctx.storage.run(
            lambda: (
                Block.delete()
                .where((Block.user == me) & (Block.blocked == other.id))
                .execute()
            )
        )
        if not deleted:
            raise ServiceError(ErrorCode.NOT_FOUND, f"{other.username} is not blocked")
        return Ok(rid=req.rid)


_FRIENDS_OF = Prepared(
    lambda user_id: (
        Friendship.select(Friendship.friend, User.username)
        .join(User, on=Friendship.friend)
        .where(Friendship.user == user_id)
        .tuples()
    ),
    int,
)
_REQUESTS_TO = Prepared(
    lambda user_id: (
        FriendRequest.select(FriendRequest, User)
        .join(User, on=FriendRequest.sender)
        .where(FriendRequest.recipient == user_id)
        .order_by(FriendRequest.sent_ms)
    ),
    int,
)
"""The friend requests waiting for a user, oldest first, with their senders."""


def _friends_of(user_id: int) -> dict[int, str]:
    """Friend id -> username of every friend of ``user_id`` (database thread)."""
    return dict(_FRIENDS_OF(user_id))
