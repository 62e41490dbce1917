"""The meeting's video: tiles in a grid, or one large tile with the others in
a strip below (speaker layout).

Each tile is a canvas with one ``PhotoImage``, made at the tile's size; every
render tick pastes the newest picture of its track into it (the picture was
already scaled on the thread that made it). Over the picture: the member's
name, their hand and microphone state, optionally a line of statistics, and
a ring while they speak. A remote person's tile has a menu (right click) with
their volume and mute for us; the speaker layout shows the active speaker
large unless the user pinned a tile.
"""

from __future__ import annotations

import math
import tkinter as tk
from collections.abc import Callable
from typing import Literal

import ttkbootstrap as ttk
from PIL import Image, ImageTk

from ...engine.audio_model import AudioActivity
from ...engine.backend.avatars import PALETTE
from ...engine.model import MeetingMember, MeetingTile, avatar_tint
from ..video import TileBuffers, TilePicture
from .tile_menu import PersonAudio

__all__ = ["MEMBER_KIND", "Tile", "VideoStage", "with_member_tiles"]

ASPECT = 4 / 3
MIN_TILE = (160, 120)
STRIP_HEIGHT = 120
GAP = 6
BACKGROUND = "#1e1e1e"
OVERLAY = "#000000"
SPEAKING_RING = "#2ecc71"
RING_WIDTH = 4
MEMBER_KIND = "member"
"""The kind of a tile that stands for a member sending no camera video."""


def with_member_tiles(
    tiles: tuple[MeetingTile, ...], members: tuple[MeetingMember, ...]
) -> tuple[MeetingTile, ...]:
    """``tiles`` and, after them, a tile for every member without a camera
    tile (their avatar and name), so everyone in the meeting is seen."""
    with_camera = {t.username for t in tiles if t.kind == "camera"}
    avatar_tiles = tuple(
        MeetingTile(
            f"{MEMBER_KIND}:{m.username}",
            m.username,
            "You" if m.me else m.name,
            MEMBER_KIND,
            m.me,
        )
        for m in members
        if m.username not in with_camera
    )
    return tiles + avatar_tiles


class Tile(tk.Canvas):
    """One video tile; ``on_click(key)`` when clicked (to pin it large)."""

    def __init__(
        self,
        master: tk.Misc,
        tile: MeetingTile,
        on_click: Callable[[str], None],
        on_menu: Callable[[Tile, int, int], None] | None = None,
    ) -> None:
        super().__init__(
            master, background=BACKGROUND, highlightthickness=0, borderwidth=0
        )
        self.tile = tile
        self.speaking = False
        """Whether the tile's person speaks now (the ring is drawn)."""
        self.tile_size = (0, 0)
        self.photo: ImageTk.PhotoImage | None = None
        self.picture: TilePicture | None = None
        """The last picture shown (None while waiting for video)."""
        self.frames_shown = 0
        self.member: MeetingMember | None = None
        self.stats_text = ""
        self.show_stats = False
        self.bind("<Button-1>", lambda _e: on_click(self.tile.key))
        if on_menu is not None:
            self.bind("<Button-3>", lambda e: on_menu(self, e.x_root, e.y_root))

    @property
    def key(self) -> str:
        return self.tile.key

    def resize(self, size: tuple[int, int]) -> None:
        """Make the tile ``size`` pixels and its picture buffer with it."""
        if size == self.tile_size:
            return
        self.tile_size = size
        self.configure(width=size[0], height=size[1])
        self.photo = ImageTk.PhotoImage("RGB", size, master=self)
        self.picture = None
        self.redraw()

    def render(self, picture: TilePicture | None) -> None:
        """Paste ``picture`` (the newest one, if any) into the tile."""
        if (
            picture is None
            or self.photo is None
            or picture.image.size != self.tile_size
        ):
            return
        first = self.picture is None
        self.photo.paste(picture.image)
        self.picture = picture
        self.frames_shown += 1
        if first:
            self.redraw()

    def set_member(self, member: MeetingMember | None) -> None:
        if member != self.member:
            self.member = member
            self.redraw()

    def set_speaking(self, speaking: bool) -> None:
        if speaking != self.speaking:
            self.speaking = speaking
            self.redraw()

    def set_stats(self, text: str, shown: bool) -> None:
        if (text, shown) != (self.stats_text, self.show_stats):
            self.stats_text, self.show_stats = text, shown
            self.redraw()

    def redraw(self) -> None:
        """Draw the picture item and the overlays again."""
        self.delete("all")
        width, height = self.tile_size
        if self.tile.kind == MEMBER_KIND:
            self._draw_avatar(width, height)
        elif self.photo is not None and self.picture is not None:
            self.create_image(0, 0, image=self.photo, anchor="nw", tags=("picture",))
        else:
            self.create_text(
                width // 2,
                height // 2,
                text=f"{self.tile.name}\nwaiting for video…",
                fill="#bbbbbb",
                justify="center",
                tags=("waiting",),
            )
        label = self.tile.name + (" · screen" if self.tile.kind == "screen" else "")
        if self.member is not None:
            if self.member.hand_raised:
                label += "  ☝"
            if self.member.muted:
                label += "  mic off"
        self._label(6, height - 6, label, "sw", "name")
        if self.show_stats and self.stats_text:
            self._label(6, 6, self.stats_text, "nw", "stats")
        if self.speaking:
            inset = RING_WIDTH // 2
            self.create_rectangle(
                inset, inset, width - inset, height - inset,
                outline=SPEAKING_RING, width=RING_WIDTH, tags=("speaking",),
            )  # fmt: skip

    def _draw_avatar(self, width: int, height: int) -> None:
        """A member without camera video: their initial in their colour."""
        radius = max(16, min(width, height) // 5)
        x, y = width // 2, height // 2 - 8
        color = PALETTE[avatar_tint(self.tile.username, 0, len(PALETTE))]
        self.create_oval(
            x - radius, y - radius, x + radius, y + radius,
            fill=color, outline="", tags=("avatar",),
        )  # fmt: skip
        self.create_text(
            x, y, text=self.tile.username[:1].upper(), fill="white",
            font=f"-size {max(10, radius * 2 // 3)} -weight bold", tags=("avatar",),
        )  # fmt: skip
        self.create_text(
            x, y + radius + 14, text="camera off", fill="#bbbbbb", tags=("waiting",)
        )

    def _label(
        self, x: int, y: int, text: str, anchor: Literal["nw", "sw"], tag: str
    ) -> None:
        item = self.create_text(
            x + 4,
            y - 2 if "s" in anchor else y + 2,
            text=text,
            anchor=anchor,
            fill="white",
            font="-size 9",
            tags=(tag,),
        )
        x0, y0, x1, y1 = self.bbox(item)
        box = self.create_rectangle(
            x0 - 4, y0 - 2, x1 + 4, y1 + 2, fill=OVERLAY, outline="", tags=(tag,)
        )
        self.tag_lower(box, item)

    def text_of(self, tag: str) -> str:
        """The text drawn with ``tag`` (``name``, ``stats``, ``waiting``)."""
        for item in self.find_withtag(tag):
            if self.type(item) == "text":
                return str(self.itemcget(item, "text"))
        return ""

    def shown_image(self) -> Image.Image | None:
        """The part of the tile's picture that shows video (letterbox removed)."""
        if self.photo is None or self.picture is None:
            return None
        picture = self.picture
        width, height = self.tile_size
        scale = min(width / picture.source_width, height / picture.source_height)
        fitted = (
            round(picture.source_width * scale),
            round(picture.source_height * scale),
        )
        left, top = (width - fitted[0]) // 2, (height - fitted[1]) // 2
        image = ImageTk.getimage(self.photo).convert("RGB")
        return image.crop((left, top, left + fitted[0], top + fitted[1]))


class VideoStage(ttk.Frame):
    """Lays out the tiles: a grid, or the pinned tile large (speaker layout)."""

    def __init__(
        self,
        master: tk.Misc,
        frames: TileBuffers,
        *,
        on_volume: Callable[[str, int], object] = lambda _user, _percent: None,
        on_silence: Callable[[str, bool], object] = lambda _user, _muted: None,
    ) -> None:
        super().__init__(master, padding=GAP)
        self.frames = frames
        self.people = PersonAudio(self, on_volume, on_silence)
        """Each remote person's volume and mute for us (the tiles' menu)."""
        self.activity = AudioActivity()
        self.tiles: dict[str, Tile] = {}
        self.speaker_layout = False
        self.pinned: str | None = None
        self.staged_share: str | None = None
        """A screen share put on the main stage by itself (not by a click)."""
        self._grid_before_share = False
        self.bind("<Configure>", lambda _e: self.layout())

    def set_tiles(self, tiles: tuple[MeetingTile, ...]) -> None:
        """Show exactly ``tiles`` (in order)."""
        wanted = {t.key: t for t in tiles}
        new_keys = [key for key in wanted if key not in self.tiles]
        for key in list(self.tiles):
            if key not in wanted:
                self.tiles.pop(key).destroy()
                self.frames.drop(key)
        for key, tile in wanted.items():
            current = self.tiles.get(key)
            if current is None:
                on_menu = None if tile.me or tile.kind == "screen" else self.on_menu
                self.tiles[key] = Tile(self, tile, self.on_tile_click, on_menu)
                self.tiles[key].speaking = self._speaks(tile)
            elif current.tile != tile:
                current.tile = tile
                current.redraw()
        self.tiles = {key: self.tiles[key] for key in wanted}
        self._stage_new_share(new_keys, wanted)
        if self.pinned not in self.tiles:
            self.pinned = None
        self.layout()

    def _stage_new_share(
        self, new_keys: list[str], wanted: dict[str, MeetingTile]
    ) -> None:
        """A screen someone else starts sharing goes on the main stage; when
        it ends, the layout goes back to what it was."""
        if self.staged_share is not None and self.staged_share not in wanted:
            if self.pinned == self.staged_share and self._grid_before_share:
                self.speaker_layout = False
            self.staged_share = None
        for key in new_keys:
            tile = wanted[key]
            if tile.kind == "screen" and not tile.me:
                if self.staged_share is None:
                    self._grid_before_share = not self.speaker_layout
                self.staged_share = key
                self.pinned = key
                self.speaker_layout = True

    def set_members(self, members: tuple[MeetingMember, ...]) -> None:
        by_name = {m.username: m for m in members}
        for tile in self.tiles.values():
            tile.set_member(by_name.get(tile.tile.username))

    def set_speaker_layout(self, on: bool) -> None:
        """The user's choice of layout (it stays after a share ends)."""
        self.speaker_layout = on
        self._grid_before_share = False
        self.layout()

    def on_tile_click(self, key: str) -> None:
        """Pin the clicked tile as the large one (and switch to that layout)."""
        self.pinned = key
        self.speaker_layout = True
        self._grid_before_share = False
        self.event_generate("<<LayoutChanged>>")
        self.layout()

    def on_menu(self, tile: Tile, x: int, y: int) -> None:
        """Open the volume and mute menu of ``tile``'s person."""
        self.people.show(tile.tile.username, tile.tile.name, x, y)

    def _speaks(self, tile: MeetingTile) -> bool:
        return tile.kind != "screen" and tile.username in self.activity.speaking

    def set_activity(self, activity: AudioActivity) -> None:
        """Ring the tiles of who speaks; follow a new active speaker in the
        speaker layout (unless a tile is pinned)."""
        before = self.speaker()
        self.activity = activity
        for tile in self.tiles.values():
            tile.set_speaking(self._speaks(tile.tile))
        if self.speaker_layout and self.speaker() != before:
            self.layout()

    def speaker(self) -> str | None:
        """The tile shown large in the speaker layout: the pinned one, else
        the active speaker's (their camera, else their avatar)."""
        if self.pinned is not None:
            return self.pinned
        active = self.activity.active
        if active is not None:
            theirs = [
                k
                for k, t in self.tiles.items()
                if t.tile.username == active and not t.tile.me
            ]
            for kind in ("camera", MEMBER_KIND):
                for key in theirs:
                    if self.tiles[key].tile.kind == kind:
                        return key
        ranked = sorted(
            self.tiles,
            key=lambda k: (
                self.tiles[k].tile.me,
                self.tiles[k].tile.kind == MEMBER_KIND,
            ),
        )
        return ranked[0] if ranked else None

    def layout(self) -> None:
        width = max(self.winfo_width() - 2 * GAP, MIN_TILE[0])
        height = max(self.winfo_height() - 2 * GAP, MIN_TILE[1])
        if not self.tiles:
            return
        if self.speaker_layout and len(self.tiles) > 1:
            self._layout_speaker(width, height)
        else:
            self._layout_grid(list(self.tiles.values()), 0, 0, width, height)

    def _layout_grid(
        self, tiles: list[Tile], x: int, y: int, width: int, height: int
    ) -> None:
        columns = math.ceil(math.sqrt(len(tiles)))
        rows = math.ceil(len(tiles) / columns)
        cell_w = (width - GAP * (columns - 1)) // columns
        cell_h = (height - GAP * (rows - 1)) // rows
        tile_w = max(MIN_TILE[0], min(cell_w, int(cell_h * ASPECT)))
        tile_h = max(MIN_TILE[1], int(tile_w / ASPECT))
        for index, tile in enumerate(tiles):
            row, column = divmod(index, columns)
            self._place(
                tile,
                x + column * (cell_w + GAP) + (cell_w - tile_w) // 2,
                y + row * (cell_h + GAP) + (cell_h - tile_h) // 2,
                (tile_w, tile_h),
            )

    def _layout_speaker(self, width: int, height: int) -> None:
        speaker = self.speaker()
        others = [t for k, t in self.tiles.items() if k != speaker]
        big_h = height - STRIP_HEIGHT - GAP
        big_w = min(width, int(big_h * ASPECT))
        big_h = int(big_w / ASPECT)
        assert speaker is not None
        self._place(self.tiles[speaker], (width - big_w) // 2, 0, (big_w, big_h))
        small = (int(STRIP_HEIGHT * ASPECT), STRIP_HEIGHT)
        total = len(others) * small[0] + GAP * (len(others) - 1)
        x = max(0, (width - total) // 2)
        for tile in others:
            self._place(tile, x, big_h + GAP, small)
            x += small[0] + GAP

    def _place(self, tile: Tile, x: int, y: int, size: tuple[int, int]) -> None:
        if size != tile.tile_size:
            self.frames.set_size(tile.key, size)
            tile.resize(size)
        tile.place(x=x + GAP, y=y + GAP)

    def render(self) -> None:
        """Paste the newest picture of every tile (called every frame tick)."""
        for key, tile in self.tiles.items():
            tile.render(self.frames.take(key))

    def set_stats(self, lines: dict[str, str], shown: bool) -> None:
        """Each tile's line, and under a person's camera or avatar their
        audio's line (``audio:<username>``)."""
        for key, tile in self.tiles.items():
            text = lines.get(key, "")
            if tile.tile.kind in ("camera", MEMBER_KIND):
                audio = lines.get(f"audio:{tile.tile.username}", "")
                text = "\n".join(t for t in (text, audio) if t)
            tile.set_stats(text, shown)
