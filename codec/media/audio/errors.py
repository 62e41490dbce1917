"""Errors of the audio cores: a codec library that is missing or refuses."""

from __future__ import annotations

from ...errors import CodecError, ErrorCode

__all__ = ["AudioCodecError"]


class AudioCodecError(CodecError):
    """libopus could not be loaded, or refused to create, encode or decode."""

    code = ErrorCode.INTERNAL
