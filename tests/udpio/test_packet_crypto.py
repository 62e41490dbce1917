"""Opening a 1-RTT packet without aioquic's copies
(:mod:`udpio.packet_crypto`) gives what aioquic's ``decrypt_packet`` gives:
the same header, payload and packet number, the same key update, the same
errors, on every cipher suite."""

from __future__ import annotations

import os
import random

import pytest
from aioquic.quic.crypto import CryptoError, CryptoPair, KeyUnavailableError
from aioquic.quic.packet import QuicProtocolVersion
from aioquic.tls import CipherSuite

from udpio.packet_crypto import open_short

SUITES = [
    CipherSuite.AES_128_GCM_SHA256,
    CipherSuite.AES_256_GCM_SHA384,
    CipherSuite.CHACHA20_POLY1305_SHA256,
]
CID = bytes(range(8))
PN_OFFSET = 1 + len(CID)


def _pairs(suite: CipherSuite, version: int) -> tuple[CryptoPair, ...]:
    """A sender and two receivers with the same keys."""
    up, down = os.urandom(48), os.urandom(48)
    sender, *receivers = CryptoPair(), CryptoPair(), CryptoPair()
    sender.send.setup(cipher_suite=suite, secret=up, version=version)
    sender.recv.setup(cipher_suite=suite, secret=down, version=version)
    for receiver in receivers:
        receiver.recv.setup(cipher_suite=suite, secret=up, version=version)
        receiver.send.setup(cipher_suite=suite, secret=down, version=version)
    return sender, *receivers


def _packet(sender: CryptoPair, number: int, length: int, payload: bytes) -> bytes:
    first = 0x40 | (sender.key_phase << 2) | (length - 1) | 0x20
    header = (
        bytes((first,))
        + CID
        + (number & ((1 << (8 * length)) - 1)).to_bytes(length, "big")
    )
    return sender.encrypt_packet(header, payload, number)


def _open_both(theirs: CryptoPair, ours: CryptoPair, packet: bytes, expected: int):
    results = []
    for pair, opener in ((theirs, CryptoPair.decrypt_packet), (ours, open_short)):
        try:
            results.append(opener(pair, packet, PN_OFFSET, expected))
        except CryptoError as exc:
            results.append((type(exc), str(exc)))
        results.append((pair.recv.key_phase, pair.recv.secret))
    assert results[2:] == results[:2]
    return results[0]


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize(
    "version", [QuicProtocolVersion.VERSION_1, QuicProtocolVersion.VERSION_2]
)
def test_packets_open_as_aioquic_opens_them(suite, version):
    sender, theirs, ours = _pairs(suite, version)
    rng = random.Random(suite * 7 + version)
    number = 0
    for round_ in range(400):
        if round_ in (100, 250):
            sender.update_key()  # the receivers follow at the next packet
        number += rng.choice((1, 1, 1, 2, 5))
        length = rng.choice((1, 2, 2, 3, 4))
        payload = os.urandom(rng.choice((3, 20, 1200)))
        packet = _packet(sender, number, length, payload)
        expected = max(0, number - rng.randrange(0, 3))
        header, opened, got = _open_both(theirs, ours, packet, expected)
        assert (opened, got) == (payload, number)
        assert header[1:PN_OFFSET] == CID


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_damaged_short_and_keyless_packets_fail_alike(suite):
    sender, theirs, ours = _pairs(suite, QuicProtocolVersion.VERSION_1)
    packet = _packet(sender, 7, 2, b"hello, world")
    for damaged in (
        packet[:-1] + bytes((packet[-1] ^ 1,)),  # the tag
        packet[:12] + bytes((packet[12] ^ 0x80,)) + packet[13:],  # the payload
        packet[:20],  # too short to sample
        packet[: PN_OFFSET + 4 + 16],  # a sample but no tag left
    ):
        theirs_result = _open_both(theirs, ours, damaged, 6)
        assert isinstance(theirs_result[0], type) and issubclass(
            theirs_result[0], CryptoError
        )
    assert _open_both(theirs, ours, packet, 6)[1] == b"hello, world"
    theirs.recv.teardown()
    ours.recv.teardown()
    for pair in (theirs, ours):
        with pytest.raises(KeyUnavailableError):
            open_short(pair, packet, PN_OFFSET, 6)
