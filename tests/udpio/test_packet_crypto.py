"""Opening and sealing a 1-RTT packet without aioquic's copies
(:mod:`udpio.packet_crypto`) gives what aioquic's ``decrypt_packet`` and
``encrypt_packet`` give: the same bytes, header, payload and packet number,
the same key updates, the same errors, on every cipher suite."""

from __future__ import annotations

import os
import random

import pytest
from aioquic.quic.crypto import CryptoError, CryptoPair, KeyUnavailableError
from aioquic.quic.packet import QuicProtocolVersion
from aioquic.tls import CipherSuite

from udpio.packet_crypto import open_short, seal_short


class _Recording:
    """Stands in for the ``cryptography`` AEAD object of one key phase and
    records what it seals: what aioquic's ``encrypt_packet`` and
    :func:`seal_short` both call."""

    def __init__(self, inner, iv: int, record) -> None:
        self.inner, self.iv, self.record = inner, iv, record

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes:
        number = int.from_bytes(nonce, "big") ^ self.iv
        self.record(associated_data, data, number)
        return self.inner.encrypt(nonce, data, associated_data)

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes:
        return self.inner.decrypt(nonce, data, associated_data)


def record_sealing(pair: CryptoPair, record) -> None:
    """Have ``record(header, payload, number)`` called for every packet the
    pair seals from now on, whichever path seals it, in this key phase and
    the next ones; idempotent."""
    aead = pair.send.aead
    if not isinstance(aead._aead, _Recording):
        aead._aead = _Recording(aead._aead, aead._iv, record)
    if "_update_key" not in vars(pair):
        update = pair._update_key

        def updated(trigger: str) -> None:
            update(trigger)
            record_sealing(pair, record)  # the next phase's keys

        pair._update_key = updated


def stop_recording(pair: CryptoPair) -> None:
    aead = pair.send.aead
    if isinstance(aead._aead, _Recording):
        aead._aead = aead._aead.inner
    vars(pair).pop("_update_key", None)


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


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_packets_seal_as_aioquic_seals_them(suite):
    # two senders with the same keys, one sealing with aioquic's method
    _, theirs, ours = _pairs(suite, QuicProtocolVersion.VERSION_1)
    _, reader, _ = _pairs(suite, QuicProtocolVersion.VERSION_1)
    reader.recv, reader.send = theirs.send, theirs.recv  # reads what they send
    rng = random.Random(suite)
    for number in range(300):
        if number in (50, 200):
            theirs.update_key()
            ours.update_key()
        length = rng.choice((1, 2, 2, 3, 4))
        first = 0x40 | (theirs.key_phase << 2) | (length - 1) | rng.choice((0, 0x20))
        header = (
            bytes((first,)) + CID + (number % (1 << 8 * length)).to_bytes(length, "big")
        )
        payload = os.urandom(rng.choice((3, 30, 1300)))  # a sample to take
        sealed = seal_short(ours, header, payload, number)
        assert sealed == theirs.encrypt_packet(header, payload, number)
        assert (ours.send.key_phase, ours.send.secret) == (
            theirs.send.key_phase,
            theirs.send.secret,
        )
