"""Avatar pictures: fetched once per version, decoded and drawn off the Tk thread.

Every rendering is named by an :class:`~client.engine.model.AvatarSpec` key; the Tk
side asks for a key the first time it shows it and gets an ``ImageReady``.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from codec.messages.accounts import MAX_AVATAR_UPLOAD

from ...errors import ClientError
from ..model import AvatarSpec, ImageReady, UiEvent, avatar_tint

__all__ = ["Avatars", "draw_avatar", "prepare_upload"]

log = logging.getLogger("quicmeet.engine.avatars")

PALETTE = (
    "#4c6ef5",
    "#12b886",
    "#f76707",
    "#ae3ec9",
    "#1c7ed6",
    "#e8590c",
    "#2b8a3e",
    "#d6336c",
    "#5f3dc4",
    "#0b7285",
)
PRESENCE_COLORS = {"online": "#2fb344", "away": "#f59f00", "offline": "#adb5bd"}
UPLOAD_SIDE = 256
MAX_CACHED_SOURCES = 256


def _circle(image: Image.Image) -> Image.Image:
    """``image`` cut to a circle (4x supersampled edge)."""
    side = image.width
    mask = Image.new("L", (side * 4, side * 4), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, side * 4 - 1, side * 4 - 1), fill=255)
    out = image.convert("RGBA")
    out.putalpha(mask.resize((side, side), Image.Resampling.LANCZOS))
    return out


def _initials(username: str, icon: int, size: int) -> Image.Image:
    big = size * 4
    image = Image.new(
        "RGB", (big, big), PALETTE[avatar_tint(username, icon, len(PALETTE))]
    )
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=big * 0.5)
    draw.text(
        (big / 2, big / 2), username[:1].upper(), fill="white", font=font, anchor="mm"
    )
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _with_presence(image: Image.Image, presence: str) -> Image.Image:
    size = image.width
    dot = max(6, size // 3)
    ring = max(1, dot // 5)
    big = 4
    layer = Image.new("RGBA", (size * big, size * big), (0, 0, 0, 0))
    x0 = (size - dot) * big
    ImageDraw.Draw(layer).ellipse(
        (x0, x0, size * big - 1, size * big - 1),
        fill=PRESENCE_COLORS[presence],
        outline="white",
        width=ring * big,
    )
    out = image.copy()
    out.alpha_composite(layer.resize((size, size), Image.Resampling.LANCZOS))
    return out


def draw_avatar(spec: AvatarSpec, picture: Image.Image | None) -> Image.Image:
    """The RGBA image for ``spec``: ``picture`` (already square) or the initials
    on the icon's colour, in a circle, with the presence dot if asked for."""
    if picture is not None:
        face = picture.resize((spec.size, spec.size), Image.Resampling.LANCZOS)
    else:
        icon = int(spec.version.removeprefix("icon-") or 0)
        face = _initials(spec.username, icon, spec.size)
    image = _circle(face)
    if spec.presence is not None:
        image = _with_presence(image, spec.presence)
    return image


def _square(image: Image.Image) -> Image.Image:
    image = ImageOps.exif_transpose(image).convert("RGB")
    side = min(image.size)
    return ImageOps.fit(image, (side, side), Image.Resampling.LANCZOS)


def _decode_picture(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return _square(image)


def prepare_upload(path: Path) -> bytes:
    """``path`` (any picture Pillow reads) as a square PNG or JPEG small enough
    to upload as an avatar."""
    try:
        with Image.open(path) as source:
            image = _square(source)
    except (OSError, ValueError) as exc:
        raise ClientError(f"{path.name} is not a picture Pillow can read") from exc
    image = image.resize((UPLOAD_SIDE, UPLOAD_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    if out.tell() > MAX_AVATAR_UPLOAD:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=85)
    return out.getvalue()


class Avatars:
    """Draws avatar images on demand, fetching uploaded pictures with ``fetch``."""

    def __init__(
        self,
        post: Callable[[UiEvent], None],
        fetch: Callable[[str], Awaitable[bytes]],
    ) -> None:
        self._post = post
        self._fetch = fetch
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="avatars")
        self._pictures: OrderedDict[tuple[str, str], Image.Image] = OrderedDict()

    async def render(self, key: str) -> None:
        """Post an ``ImageReady`` for ``key`` (an :class:`AvatarSpec` key)."""
        spec = AvatarSpec.parse(key)
        loop = asyncio.get_running_loop()
        picture = None
        if not spec.version.startswith("icon-"):
            try:
                picture = await self._picture(spec.username, spec.version)
            except (ClientError, OSError, ValueError) as exc:
                log.info("no avatar picture for %s: %s", spec.username, exc)
        image = await loop.run_in_executor(self._executor, draw_avatar, spec, picture)
        self._post(
            ImageReady(key, image.mode, image.width, image.height, image.tobytes())
        )

    async def _picture(self, username: str, version: str) -> Image.Image:
        cached = self._pictures.get((username, version))
        if cached is not None:
            self._pictures.move_to_end((username, version))
            return cached
        data = await self._fetch(username)
        loop = asyncio.get_running_loop()
        picture = await loop.run_in_executor(self._executor, _decode_picture, data)
        self._pictures[(username, version)] = picture
        while len(self._pictures) > MAX_CACHED_SOURCES:
            self._pictures.popitem(last=False)
        return picture

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
