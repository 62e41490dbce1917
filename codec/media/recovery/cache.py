"""What a sender of a hop keeps so it can answer NACKs: its recent datagrams.

A :class:`RetransmitCache` holds the datagrams one hop sent, by track and
16-bit sequence number, for at most ``max_age_s`` and ``max_bytes``. A NACK is
answered only with what is still useful: a packet older than the receiver's
frame deadline would arrive after its frame was skipped, and a packet already
sent ``max_retransmits`` times is not sent again, so a burst of NACKs can never
become a storm. A request within ``min_interval_s`` of the packet's last
retransmission is the copy of a NACK already answered (see
:class:`~codec.media.recovery.NackGenerator`), not a retry, and is ignored.
With ``copies`` each retransmission is sent that many times: a repair is
lost only when every copy is, where a lost repair costs a round trip more
than the playout delay covers, and a freeze. Pure: the caller passes ``now``
(seconds on its own clock).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["EVICTION_SLACK_S", "CacheStats", "RetransmitCache"]


@dataclass(slots=True)
class CacheStats:
    """Counters of one :class:`RetransmitCache` (packets unless named)."""

    stored: int = 0
    requested: int = 0
    """Sequence numbers named by NACKs."""
    retransmitted: int = 0
    """Packets retransmitted (each sent ``copies`` times)."""
    missing: int = 0
    """Requested but not held: never sent on this hop, or already evicted."""
    too_late: int = 0
    """Held, but a retransmission would arrive after the frame's deadline."""
    exhausted: int = 0
    """Held, but already retransmitted ``max_retransmits`` times."""
    copies_ignored: int = 0
    """Requests within ``min_interval_s`` of their last retransmission."""


REPAIR_COPIES = 2
"""How many times each retransmission is sent: at 5 % loss, one in twenty
repairs sent once is lost and freezes the picture for a round trip; sent
twice, one in four hundred (at the cost of twice the retransmitted bytes, a
few per cent of the video)."""
REPEAT_WINDOW_S = 0.015
"""A request this soon after the packet's last retransmission is a NACK's
copy (sent :data:`~codec.media.recovery.nack.NACK_COPY_DELAY_S` after it, on
the same path), not a retry, which comes a round trip later and at least
twice that delay later."""


EVICTION_SLACK_S = 0.1
"""How much longer than ``max_age_s`` (seconds) a packet may stay held until
a :meth:`RetransmitCache.put` evicts the aged packets, in one batch rather
than one per put (the SFU puts every datagram it forwards, per subscriber).
NACKs are answered from an exact eviction."""


class _Resent:
    """What a packet's retransmissions so far were (packets never resent,
    nearly all of them, have none)."""

    __slots__ = ("retransmits", "resent_at")

    def __init__(self) -> None:
        self.retransmits = 0
        self.resent_at = float("-inf")


class RetransmitCache:
    """The last ``max_age_s`` seconds (at most ``max_bytes`` bytes) of the
    datagrams a hop sent, keyed by ``(track_id, seq)`` (aged ones stay held up
    to :data:`EVICTION_SLACK_S` longer, but are never sent again).

    Call :meth:`put` for every datagram sent and :meth:`retransmit` with the
    sequence numbers of a NACK; it returns the datagrams to send again.
    """

    def __init__(
        self,
        max_bytes: int = 1_000_000,
        max_age_s: float = 1.0,
        max_retransmits: int = 2,
        *,
        copies: int = 1,
        min_interval_s: float = 0.0,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.max_retransmits = max_retransmits
        self.copies = copies
        self.min_interval_s = min_interval_s
        self.stats = CacheStats()
        self._entries: OrderedDict[int, tuple[bytes, float]] = OrderedDict()
        """``track_id << 16 | seq`` → (datagram, sent at), oldest first. The
        SFU puts each datagram it forwards, per subscriber: an int key and a
        tuple cost least."""
        self._resent: dict[int, _Resent] = {}
        """The retransmissions of the packets held that were resent."""
        self._bytes = 0
        self._next_eviction = float("-inf")
        """When (seconds) a put next evicts what has aged."""

    @property
    def bytes_held(self) -> int:
        """Datagram bytes held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, track_id: int, seq: int, data: bytes, now: float) -> None:
        """Remember ``data``, sent at ``now`` as packet ``seq`` of ``track_id``.

        A datagram bigger than ``max_bytes`` is not kept."""
        key = track_id << 16 | seq & 0xFFFF
        entries = self._entries
        old = entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old[0])
            self._resent.pop(key, None)
        if now >= self._next_eviction:
            self._evict(now)
        size = len(data)
        if size > self.max_bytes:
            return
        while self._bytes + size > self.max_bytes:
            self._drop_oldest()
        entries[key] = (data, now)
        self._bytes += size
        self.stats.stored += 1

    def retransmit(
        self,
        track_id: int,
        seqs: list[int],
        now: float,
        deadline_s: float | None = None,
    ) -> list[bytes]:
        """The datagrams to send again for a NACK of ``seqs`` of ``track_id``.

        ``deadline_s`` is how long after its first sending a packet can still
        arrive in time for its frame (the receiver's frame wait less what the
        send queue adds); older packets are refused. Each packet is returned
        ``copies`` times per retransmission and at most ``max_retransmits``
        retransmissions over the cache's life.
        """
        self._evict(now)
        stats = self.stats
        out = []
        entries, resent = self._entries, self._resent
        base = track_id << 16
        for seq in seqs:
            stats.requested += 1
            key = base | seq & 0xFFFF
            entry = entries.get(key)
            if entry is None:
                stats.missing += 1
                continue
            data, sent_at = entry
            state = resent.get(key)
            if deadline_s is not None and now - sent_at > deadline_s:
                stats.too_late += 1
            elif state is not None and now - state.resent_at < self.min_interval_s:
                stats.copies_ignored += 1
            elif (0 if state is None else state.retransmits) >= self.max_retransmits:
                stats.exhausted += 1
            else:
                if state is None:
                    state = resent[key] = _Resent()
                state.retransmits += 1
                state.resent_at = now
                stats.retransmitted += 1
                out.extend([data] * self.copies)
        return out

    def _evict(self, now: float) -> None:
        """Drop every packet older than ``max_age_s`` at ``now``."""
        max_age = self.max_age_s
        oldest_allowed = now - max_age
        entries = self._entries
        while entries:
            sent_at = next(iter(entries.values()))[1]
            if sent_at >= oldest_allowed:
                self._next_eviction = sent_at + max_age + EVICTION_SLACK_S
                return
            self._drop_oldest()
        self._next_eviction = now + max_age

    def _drop_oldest(self) -> None:
        key, (data, _) = self._entries.popitem(last=False)
        self._bytes -= len(data)
        if self._resent:
            self._resent.pop(key, None)
