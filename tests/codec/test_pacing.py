"""The pacer lets a sender whose event loop wakes every few milliseconds send
what its window allows, and paces slow paths exactly as aioquic does."""

from aioquic.quic.recovery import QuicPacketPacer

from codec.pacing import LOOP_TURN_S, TurnPacer, burst_seconds

MSS = 1452


def packets_per_wakeup(pacer: QuicPacketPacer, wake_every: float, turns: int) -> float:
    """Wake every ``wake_every`` seconds (virtual clock) and send packets
    while the pacer allows; the mean packets sent per wakeup."""
    now = 0.0
    sent = 0
    for _ in range(turns):
        now += wake_every
        while pacer.next_send_time(now) is None:
            pacer.update_after_send(now)
            sent += 1
    return sent / turns


def pacers(window: int, srtt: float) -> tuple[QuicPacketPacer, TurnPacer]:
    plain = QuicPacketPacer(max_datagram_size=MSS)
    turn = TurnPacer(max_datagram_size=MSS)
    for pacer in (plain, turn):
        pacer.update_rate(congestion_window=window, smoothed_rtt=srtt)
    return plain, turn


def test_a_fast_path_sends_its_rate_however_late_the_loop_wakes():
    # 1.4 MB window, 10 ms round trip: 140 MB/s, about 96 packets per
    # millisecond; the loop wakes every 2 ms.
    plain, turn = pacers(1_400_000, 0.010)
    rate_packets_per_wakeup = 1_400_000 / 0.010 * 0.002 / MSS
    assert packets_per_wakeup(plain, 0.002, 200) <= 17
    assert packets_per_wakeup(turn, 0.002, 200) >= 0.95 * rate_packets_per_wakeup


def test_a_slow_path_is_paced_as_aioquic_paces_it():
    # 1.5 Mbit/s with a 100 ms round trip: a window of about 19 KB.
    for window, srtt, wake in ((19_000, 0.1, 0.002), (19_000, 0.1, 0.05)):
        plain, turn = pacers(window, srtt)
        assert turn.bucket_max == plain.bucket_max
        assert packets_per_wakeup(turn, wake, 100) == packets_per_wakeup(
            plain, wake, 100
        )


def test_the_burst_covers_a_loop_turn_but_at_most_a_quarter_round_trip():
    assert burst_seconds(1_000_000, 0.100, 0.0001) == LOOP_TURN_S
    assert burst_seconds(1_000_000, 0.004, 0.0001) == 0.001
    assert burst_seconds(1_000_000, 0.100, 0.02) == 0.02
