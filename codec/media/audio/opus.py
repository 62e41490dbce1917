"""Opus for speech: 48 kHz mono, 20 ms frames, in-band FEC, live bitrate.

:class:`OpusEncoder` turns one 20 ms frame of 16-bit PCM into one packet;
:meth:`OpusEncoder.set_bitrate` takes effect on the next frame without a new
encoder. :class:`OpusDecoder` decodes a packet, recovers a lost frame from the
next packet's in-band FEC (:meth:`~OpusDecoder.decode_fec`), or conceals it
(:meth:`~OpusDecoder.conceal`, Opus PLC). The library is PyAV's own libopus,
reached through :mod:`._libopus`.
"""

from __future__ import annotations

import ctypes

import numpy as np

from . import _libopus as opus
from .errors import AudioCodecError

__all__ = [
    "DEFAULT_BITRATE_BPS",
    "FRAME_MS",
    "FRAME_SAMPLES",
    "OpusDecoder",
    "OpusEncoder",
    "SAMPLE_RATE",
]

SAMPLE_RATE = 48_000
"""Samples per second inside the client, in and out."""
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
"""960 samples: one frame, one packet, 960 ticks of the 48 kHz media clock."""
DEFAULT_BITRATE_BPS = 32_000
MIN_BITRATE_BPS = 6_000
MAX_BITRATE_BPS = 128_000
_MAX_PACKET = 1_150
_I16P = ctypes.POINTER(ctypes.c_int16)


def _pcm(frame: np.ndarray) -> np.ndarray:
    if frame.shape != (FRAME_SAMPLES,) or frame.dtype != np.int16:
        raise ValueError(
            f"a frame is {FRAME_SAMPLES} int16 samples, not {frame.shape} {frame.dtype}"
        )
    return np.ascontiguousarray(frame)


class OpusEncoder:
    """Encodes 20 ms mono frames for speech (VoIP mode, FEC on).

    ``expected_loss_pct`` tells the encoder how much redundancy in-band FEC
    should carry (libopus only adds FEC when it expects loss).
    """

    def __init__(
        self, bitrate_bps: int = DEFAULT_BITRATE_BPS, *, expected_loss_pct: int = 10
    ) -> None:
        error = ctypes.c_int()
        handle = opus.lib().opus_encoder_create(
            SAMPLE_RATE, 1, opus.APPLICATION_VOIP, ctypes.byref(error)
        )
        opus.check(error.value, "encoder create")
        if not handle:
            raise AudioCodecError("opus encoder create returned nothing")
        self._handle: int | None = handle
        self._out = ctypes.create_string_buffer(_MAX_PACKET)
        opus.encoder_ctl(handle, opus.SET_SIGNAL, opus.SIGNAL_VOICE)
        opus.encoder_ctl(handle, opus.SET_INBAND_FEC, 1)
        opus.encoder_ctl(handle, opus.SET_PACKET_LOSS_PERC, expected_loss_pct)
        opus.encoder_ctl(handle, opus.SET_COMPLEXITY, 9)
        self.set_bitrate(bitrate_bps)

    @property
    def bitrate_bps(self) -> int:
        """The bitrate the encoder runs at now (bits per second)."""
        return opus.encoder_get(self._live(), opus.GET_BITRATE)

    def set_bitrate(self, bitrate_bps: int) -> None:
        """Change the bitrate from the next frame on (6 to 128 kbit/s)."""
        if not MIN_BITRATE_BPS <= bitrate_bps <= MAX_BITRATE_BPS:
            raise ValueError(
                f"opus bitrate {bitrate_bps} is outside "
                f"{MIN_BITRATE_BPS}..{MAX_BITRATE_BPS} bit/s"
            )
        opus.encoder_ctl(self._live(), opus.SET_BITRATE, bitrate_bps)

    def set_expected_loss(self, loss_pct: int) -> None:
        """How much FEC to carry: the loss the receivers report (0..100 %)."""
        opus.encoder_ctl(
            self._live(), opus.SET_PACKET_LOSS_PERC, max(0, min(100, loss_pct))
        )

    def encode(self, frame: np.ndarray) -> bytes:
        """One packet for one frame of :data:`FRAME_SAMPLES` int16 samples."""
        pcm = _pcm(frame)
        size = opus.check(
            opus.lib().opus_encode(
                self._live(),
                pcm.ctypes.data_as(_I16P),
                FRAME_SAMPLES,
                self._out,
                _MAX_PACKET,
            ),
            "encode",
        )
        return self._out.raw[:size]

    def close(self) -> None:
        """Free the encoder (it cannot be used afterwards)."""
        if self._handle is not None:
            opus.lib().opus_encoder_destroy(self._handle)
            self._handle = None

    def _live(self) -> int:
        if self._handle is None:
            raise AudioCodecError("the opus encoder is closed")
        return self._handle

    def __del__(self) -> None:
        self.close()


class OpusDecoder:
    """Decodes one speaker's packets into 20 ms frames of int16 samples."""

    def __init__(self) -> None:
        error = ctypes.c_int()
        handle = opus.lib().opus_decoder_create(SAMPLE_RATE, 1, ctypes.byref(error))
        opus.check(error.value, "decoder create")
        if not handle:
            raise AudioCodecError("opus decoder create returned nothing")
        self._handle: int | None = handle

    def decode(self, payload: bytes) -> np.ndarray:
        """The frame a packet carries; a corrupt packet raises
        :class:`AudioCodecError`."""
        return self._run(bytes(payload), fec=False)

    def decode_fec(self, next_payload: bytes) -> np.ndarray:
        """The frame before ``next_payload``, rebuilt from its in-band FEC (or
        concealed by the decoder when the packet carries none)."""
        return self._run(bytes(next_payload), fec=True)

    def conceal(self) -> np.ndarray:
        """A frame of packet-loss concealment, continuing the last one."""
        return self._run(None, fec=False)

    def _run(self, payload: bytes | None, *, fec: bool) -> np.ndarray:
        if self._handle is None:
            raise AudioCodecError("the opus decoder is closed")
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        opus.check(
            opus.lib().opus_decode(
                self._handle,
                payload,
                0 if payload is None else len(payload),
                out.ctypes.data_as(_I16P),
                FRAME_SAMPLES,
                1 if fec else 0,
            ),
            "decode",
        )
        return out

    def close(self) -> None:
        """Free the decoder (it cannot be used afterwards)."""
        if self._handle is not None:
            opus.lib().opus_decoder_destroy(self._handle)
            self._handle = None

    def __del__(self) -> None:
        self.close()
