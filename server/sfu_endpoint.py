"""One member connection as the SFU sees it (:class:`Endpoint`): the tracks
it publishes and who receives them, what the SFU misses of them, the
keyframes asked of it, the simulcast layers it sends and the sizes it shows
other members' video at."""

from __future__ import annotations

from codec.media.recovery import NackGenerator

from .sfu_hop import Hop
from .sfu_layers import PublishedLayers

__all__ = ["Endpoint"]


class Endpoint:
    """A member connection: the tracks it publishes, who receives them, what
    the SFU misses of them and the keyframes asked of it."""

    __slots__ = (
        "hop",
        "room",
        "routes",
        "keyframe_asked_at",
        "nacks",
        "weighed_at",
        "layered",
        "views",
    )

    def __init__(self, hop: Hop, room: object) -> None:
        self.hop = hop
        self.room = room
        self.routes: dict[int, tuple[Hop, ...]] = {}
        self.keyframe_asked_at: dict[int, float] = {}
        """Track id (with the spatial layer above bit 32) → when a keyframe
        was asked for and none has come since."""
        self.nacks: dict[int, NackGenerator] = {}
        """Per track id (with the spatial layer above bit 32: each layer has
        its own sequence numbers) what the SFU misses of it."""
        self.layered: dict[int, PublishedLayers] = {}
        """The tracks sent as simulcast layers (``server.sfu_layers``)."""
        self.weighed_at: dict[int, float] = {}
        """Track id → when its subscribers' paths were last weighed."""
        self.views: dict[int, tuple[int, int]] = {}
        """Track id → the largest size (width, height in pixels) this member
        shows it at (its tile), as it said (``set_view``)."""
