"""The feedback loop of a hop, pure: arrivals recorded, reported, read back."""

from __future__ import annotations

import pytest

from codec.media import FeedbackPacket, parse_packet
from codec.media.adapt import ArrivalRecorder, SendHistory


def _roundtrip(packet: FeedbackPacket) -> FeedbackPacket:
    parsed = parse_packet(packet.serialize())
    assert isinstance(parsed, FeedbackPacket)
    return parsed


def test_feedback_reports_arrivals_and_losses_to_the_sender() -> None:
    history = SendHistory()
    recorder = ArrivalRecorder()
    for seq in range(10):
        history.on_sent(seq, 1000 + seq, seq * 0.01)
        if seq not in (3, 7):
            recorder.on_packet(seq, 5.0 + seq * 0.012)
    assert recorder.due(5.2)
    packets = recorder.feedback(5.2)
    assert len(packets) == 1
    results = history.on_feedback(_roundtrip(packets[0]))
    assert [r.seq for r in results] == list(range(10))
    assert [r.arrived_at is None for r in results] == [s in (3, 7) for s in range(10)]
    assert results[5].size == 1005 and results[5].sent_at == pytest.approx(0.05)
    arrived = [r.arrived_at for r in results if r.arrived_at is not None]
    assert arrived[1] - arrived[0] == pytest.approx(0.012, abs=0.00025)
    assert history.bytes_in_flight == 0
    assert not recorder.due(5.21) and recorder.feedback(5.3) == []


def test_reports_continue_where_the_last_ended_and_late_packets_stay_lost() -> None:
    recorder = ArrivalRecorder()
    recorder.on_packet(0, 0.0)
    recorder.on_packet(2, 0.01)
    first = recorder.feedback(0.05)[0]
    assert (first.base_seq, len(first.arrivals)) == (0, 3)
    recorder.on_packet(1, 0.06)  # too late: already reported missing
    recorder.on_packet(3, 0.07)
    second = recorder.feedback(0.1)[0]
    assert second.base_seq == 3 and len(second.arrivals) == 1
    assert second.feedback_seq == first.feedback_seq + 1


def test_sequence_numbers_wrap_and_long_runs_split_at_500() -> None:
    history = SendHistory()
    recorder = ArrivalRecorder()
    for index in range(1200):
        seq = (65000 + index) & 0xFFFF
        history.on_sent(seq, 100, index * 0.0001)
        recorder.on_packet(seq, 1.0 + index * 0.0001)
    packets = recorder.feedback(1.2)
    assert [len(p.arrivals) for p in packets] == [500, 500, 200]
    results = [r for p in packets for r in history.on_feedback(_roundtrip(p))]
    assert len(results) == 1200
    assert all(r.arrived_at is not None for r in results)
    assert [r.seq for r in results] == sorted(r.seq for r in results)


def test_a_lost_feedback_packet_is_counted_not_taken_for_media_loss() -> None:
    history = SendHistory()
    recorder = ArrivalRecorder()
    for seq in range(6):
        history.on_sent(seq, 500, seq * 0.01)
    recorder.on_packet(0, 0.0)
    recorder.on_packet(1, 0.01)
    history.on_feedback(recorder.feedback(0.05)[0])
    recorder.on_packet(2, 0.06)
    recorder.feedback(0.1)  # lost on the way
    recorder.on_packet(3, 0.11)
    results = history.on_feedback(recorder.feedback(0.15)[0])
    assert history.feedback_lost == 1
    assert [r.seq for r in results] == [3]


def test_packets_are_forgotten_two_seconds_after_they_left_in_batches() -> None:
    """Feedback finds each packet up to 2 s after it left and none 2.1 s
    after (they are forgotten in batches); bytes_in_flight counts those held."""
    for step in (0.002, 0.01, 0.3):
        history = SendHistory()
        recorder = ArrivalRecorder()
        count = int(4.0 / step)
        now = (count - 1) * step
        for seq in range(count):
            history.on_sent(seq & 0xFFFF, 100, seq * step)
            if seq * step > now - 2.3:  # arrived, as far as the feedback tells
                recorder.on_packet(seq & 0xFFFF, 10.0 + seq * step)
        held = history.bytes_in_flight // 100
        reported = [
            r.seq
            for p in recorder.feedback(20.0)
            for r in history.on_feedback(_roundtrip(p))
        ]
        assert len(reported) == held
        assert reported == list(range(count - held, count))
        oldest = (count - held) * step
        assert now - 2.1 <= oldest
        assert oldest - step < now - 2.0 or count == held
        assert history.bytes_in_flight == 0
