"""The watch benchmark's arithmetic (bench/watch_figures.py): a wrong match of events to writes
or a wrong window count would print figures that look fine and mean nothing."""

from __future__ import annotations

import pytest

from bench.watch_figures import Sent, latencies, most_within, percentile
from bench.watch_shops import Write

CHANNELS = {"shop": 0, "outlet": 2}


def write(at: float, channel: str, sku: str, stock: int) -> Write:
    return Write(at, channel, sku, stock, batch=1)


def test_an_event_is_confirmed_by_the_first_write_carrying_its_stock_or_a_later_one() -> None:
    sent = [
        Sent("A", 1001, sent=0.9, answered=1.0, status=200),
        Sent("A", 1002, sent=1.9, answered=2.0, status=200),  # coalesced with the first
        Sent("B", 1003, sent=2.9, answered=3.0, status=200),  # never written to the outlet
    ]
    writes = [
        write(1.5, "shop", "A", 1000),  # an older value: confirms nothing
        write(2.5, "shop", "A", 1002),  # carries both A events
        write(2.6, "outlet", "A", 1000),  # 1002 less the buffer of 2: both
        write(3.5, "shop", "B", 1003),
        write(3.6, "outlet", "B", 1000),  # 1003 less 2 is 1001: too low
    ]
    result = latencies(sent, writes, CHANNELS)
    assert result["shop"].seconds == pytest.approx([1.5, 0.5, 0.5])
    assert result["shop"].unconfirmed == 0
    assert result["outlet"].seconds == pytest.approx([1.6, 0.6])
    assert result["outlet"].unconfirmed == 1


def test_a_write_before_the_answer_counts_as_zero_and_is_noted() -> None:
    sent = [Sent("A", 1001, sent=0.9, answered=1.0, status=200)]
    result = latencies(sent, [write(0.95, "shop", "A", 1001)], {"shop": 0})
    assert result["shop"].seconds == [0.0]
    assert result["shop"].before_answer == 1


@pytest.mark.parametrize(
    ("times", "window", "most"),
    [
        ([], 0.2, 0),
        ([1.0], 0.2, 1),
        ([1.0, 1.25, 1.5], 0.25, 1),  # exactly a window apart: two windows
        ([1.0, 1.1, 1.4], 0.2, 2),
        ([1.0, 1.05, 1.1, 5.0], 0.2, 3),
    ],
)
def test_most_within_a_window(times: list[float], window: float, most: int) -> None:
    assert most_within(times, window) == most


def test_percentiles_interpolate_between_ranks() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([3.0], 99) == 3.0
