"""The one adapter to libopus: loads the copy that PyAV's wheel ships.

PyAV's own ``libopus`` wrapper (FFmpeg's ``libopusenc``/``libopusdec``) reads
the bitrate only when the encoder opens and has no way to decode a lost frame
from the next packet's in-band FEC or to run packet-loss concealment, so we
call the same library directly through ctypes. Everything here is private to
:mod:`codec.media.audio.opus`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path

from .errors import AudioCodecError

APPLICATION_VOIP = 2048
SET_BITRATE = 4002
GET_BITRATE = 4003
SET_VBR = 4006
SET_COMPLEXITY = 4010
SET_INBAND_FEC = 4012
SET_PACKET_LOSS_PERC = 4014
SET_SIGNAL = 4024
SIGNAL_VOICE = 3001
OK = 0


def _candidates() -> list[str]:
    found: list[str] = []
    try:
        import av

        libs = Path(av.__file__).resolve().parent.parent / "av.libs"
        found += [str(p) for p in sorted(libs.glob("libopus*.so*"))]
        found += [str(p) for p in sorted(libs.glob("libopus*.dylib"))]
        found += [str(p) for p in sorted(libs.glob("opus*.dll"))]
    except ImportError:
        pass
    system = ctypes.util.find_library("opus")
    if system is not None:
        found.append(system)
    return found


def _load() -> ctypes.CDLL:
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if hasattr(lib, "opus_decode") and hasattr(lib, "opus_encoder_create"):
            break
    else:
        raise AudioCodecError("libopus not found (neither in PyAV's wheel nor system)")
    p, i, i16p = ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int16)
    ip = ctypes.POINTER(ctypes.c_int)
    lib.opus_encoder_create.argtypes = [ctypes.c_int32, i, i, ip]
    lib.opus_encoder_create.restype = p
    lib.opus_encoder_destroy.argtypes = [p]
    lib.opus_encoder_destroy.restype = None
    lib.opus_encode.argtypes = [p, i16p, i, ctypes.c_char_p, ctypes.c_int32]
    lib.opus_encode.restype = ctypes.c_int32
    lib.opus_decoder_create.argtypes = [ctypes.c_int32, i, ip]
    lib.opus_decoder_create.restype = p
    lib.opus_decoder_destroy.argtypes = [p]
    lib.opus_decoder_destroy.restype = None
    lib.opus_decode.argtypes = [p, ctypes.c_char_p, ctypes.c_int32, i16p, i, i]
    lib.opus_decode.restype = i
    lib.opus_strerror.argtypes = [i]
    lib.opus_strerror.restype = ctypes.c_char_p
    lib.opus_get_version_string.restype = ctypes.c_char_p
    return lib


_lib: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    """The loaded library (loaded once, on first use)."""
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


def check(code: int, what: str) -> int:
    """``code`` when it is not an error, else :class:`AudioCodecError`."""
    if code < 0:
        message = lib().opus_strerror(code).decode()
        raise AudioCodecError(f"opus {what} failed: {message} ({code})")
    return code


def encoder_ctl(handle: int, request: int, value: int) -> None:
    """``opus_encoder_ctl`` with one int argument (a SET request)."""
    check(lib().opus_encoder_ctl(ctypes.c_void_p(handle), request, value), "ctl")


def encoder_get(handle: int, request: int) -> int:
    """``opus_encoder_ctl`` with an int out-argument (a GET request)."""
    out = ctypes.c_int32()
    check(
        lib().opus_encoder_ctl(ctypes.c_void_p(handle), request, ctypes.byref(out)),
        "ctl",
    )
    return out.value
