"""The path MTU search on a virtual clock: largest first, step down on loss,
confirm now and then, fall back to 1,200 bytes when confirmations are lost."""

from codec.pmtu import (
    BASE_SIZE,
    CONFIRM_INTERVAL_S,
    RESEARCH_INTERVAL_S,
    PathMtuSearch,
    is_padding,
)


def test_the_largest_candidate_that_gets_through_is_kept():
    search = PathMtuSearch()
    assert search.current == BASE_SIZE
    assert search.next_probe(0.0) == 1452
    assert search.next_probe(0.0) is None  # one probe out at a time
    search.probe_lost(1452, 0.1)
    assert search.next_probe(0.1) == 1400
    search.probe_acked(1400, 0.2)
    assert search.current == 1400 and not search.searching
    assert search.next_probe(0.3) is None  # nothing until the confirmation


def test_a_path_that_carries_nothing_larger_keeps_1200_and_searches_later():
    search = PathMtuSearch()
    for size in (1452, 1400, 1280):
        assert search.next_probe(1.0) == size
        search.probe_lost(size, 1.0)
    assert search.current == BASE_SIZE
    assert search.next_probe(1.0 + RESEARCH_INTERVAL_S - 0.1) is None
    assert search.next_probe(1.0 + RESEARCH_INTERVAL_S) is None  # nothing left
    assert not search.searching


def test_confirmations_keep_the_size_and_two_lost_ones_fall_back():
    search = PathMtuSearch()
    assert search.next_probe(0.0) == 1452
    search.probe_acked(1452, 0.0)
    assert search.next_probe(CONFIRM_INTERVAL_S - 1) is None
    assert search.next_probe(CONFIRM_INTERVAL_S) == 1452
    search.probe_lost(1452, CONFIRM_INTERVAL_S)
    assert search.current == 1452  # one loss may be chance
    assert search.next_probe(CONFIRM_INTERVAL_S) == 1452
    search.probe_lost(1452, CONFIRM_INTERVAL_S + 1)
    assert search.current == BASE_SIZE and search.searching
    later = CONFIRM_INTERVAL_S + 1 + RESEARCH_INTERVAL_S
    assert search.next_probe(later - 1) is None
    assert search.next_probe(later) == 1452


def test_a_probe_that_could_not_leave_is_asked_for_again_and_stale_verdicts_ignored():
    search = PathMtuSearch()
    assert search.next_probe(0.0) == 1452
    search.probe_not_sent()
    assert search.in_flight is None
    assert search.next_probe(0.0) == 1452
    search.probe_acked(1280, 0.0)  # not the probe that is out
    assert search.current == BASE_SIZE and search.in_flight == 1452


def test_padding_is_told_from_media_by_its_first_byte():
    assert is_padding(b"\x00\x00")
    assert not is_padding(b"\x48rest")  # version 1 in the top bits
    assert not is_padding(b"")


def test_an_idle_connection_is_confirmed_only_once_it_sends_again():
    search = PathMtuSearch()
    assert search.next_probe(0.0, sent_at=0.0) == 1452  # the search: always
    search.probe_acked(1452, 0.1)
    due = 0.1 + CONFIRM_INTERVAL_S
    # nothing ack-eliciting sent since the verdict (only the probe, before it)
    for now in (due, due + 100.0, due + 1000.0):
        assert search.next_probe(now, sent_at=0.0) is None
    assert search.in_flight is None
    # the first transmit after the connection sends again confirms at once
    assert search.next_probe(due + 1000.0, sent_at=due + 999.0) == 1452
    search.probe_lost(1452, due + 1000.5)
    # one loss: the second try waits for sending too, then falls back
    assert search.next_probe(due + 2000.0, sent_at=due + 999.0) is None
    assert search.next_probe(due + 2000.0, sent_at=due + 1999.0) == 1452
    search.probe_lost(1452, due + 2000.5)
    assert search.current == BASE_SIZE and search.searching
