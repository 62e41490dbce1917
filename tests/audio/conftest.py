"""Fixtures of the audio tests: PulseAudio's null sink (see :mod:`tests.pulse`)."""

from tests.pulse import pulse_devices

__all__ = ["pulse_devices"]
