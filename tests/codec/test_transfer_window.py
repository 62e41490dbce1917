"""The file sender's window grows while the path keeps up with it, and stays
(or falls back) at 1 MiB while the bytes wait for the path."""

import pytest

from codec.transfer_window import MAX_WINDOW, MIN_WINDOW, TransferWindow

MiB = 1024 * 1024


def test_a_window_the_path_keeps_up_with_doubles_once_per_round_to_its_cap():
    window = TransferWindow()
    assert window.size == MIN_WINDOW
    position = confirmed = 0
    sizes = []
    for _ in range(6):
        position = confirmed + window.size
        # Everything handed over has left: the window is the limit.
        window.full(position, confirmed, unsent=0)
        sizes.append(window.size)
        # Full again before the receiver confirmed this round: no change.
        window.full(position, confirmed + MiB // 2, unsent=0)
        assert window.size == sizes[-1]
        confirmed = position
    assert sizes == [2 * MiB, 4 * MiB, 4 * MiB, 4 * MiB, 4 * MiB, 4 * MiB]
    assert MAX_WINDOW == 4 * MiB


def test_a_window_whose_bytes_wait_for_the_path_stays_at_its_minimum():
    window = TransferWindow()
    confirmed = 0
    for _ in range(20):
        position = confirmed + window.size
        # A slow link: most of the window still sits in the connection's queue.
        window.full(position, confirmed, unsent=position - confirmed - 64 * 1024)
        confirmed += 256 * 1024
    assert window.size == MIN_WINDOW


def test_a_grown_window_halves_back_when_the_path_slows_down():
    window = TransferWindow()
    window.full(MiB, 0, unsent=0)
    window.full(3 * MiB, MiB, unsent=0)
    assert window.size == 4 * MiB
    window.full(7 * MiB, 3 * MiB, unsent=3 * MiB)
    assert window.size == 2 * MiB
    window.full(9 * MiB, 7 * MiB, unsent=int(1.5 * MiB))
    assert window.size == MIN_WINDOW
    window.full(10 * MiB, 9 * MiB, unsent=MiB)
    assert window.size == MIN_WINDOW


def test_between_the_thresholds_the_window_keeps_its_size():
    window = TransferWindow()
    window.full(MiB, 0, unsent=MiB // 3)
    assert window.size == MIN_WINDOW


def test_bounds_must_make_sense():
    with pytest.raises(ValueError):
        TransferWindow(minimum=0)
    with pytest.raises(ValueError):
        TransferWindow(minimum=2 * MiB, maximum=MiB)
