"""The batch prefetcher the training loop reads from."""

import time

import pytest

from lungapp.training.prefetch import Prefetcher


def test_items_come_out_in_order_then_stop():
    feed = Prefetcher(iter(range(100)), depth=3)
    assert [feed.next() for _ in range(100)] == list(range(100))
    with pytest.raises(StopIteration):
        feed.next()
    feed.close()


def test_producer_runs_ahead_while_the_consumer_works():
    made = []

    def produce():
        for i in range(5):
            made.append(i)
            yield i

    feed = Prefetcher(produce(), depth=2)
    deadline = time.monotonic() + 5
    while len(made) < 3 and time.monotonic() < deadline:  # 2 queued + 1 waiting to be put
        time.sleep(0.01)
    assert len(made) == 3  # bounded by depth: it did not run to the end
    assert list(feed) == [0, 1, 2, 3, 4]


def test_a_producer_error_reaches_the_consumer_after_the_good_items():
    def produce():
        yield 1
        raise ValueError("bad batch in file x.wav")

    feed = Prefetcher(produce())
    assert feed.next() == 1
    with pytest.raises(ValueError, match="x.wav"):
        feed.next()
    with pytest.raises(StopIteration):
        feed.next()
    feed.close()


def test_close_stops_a_blocked_producer():
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    feed = Prefetcher(endless(), depth=1)
    assert feed.next() == 0
    feed.close()
    assert not feed._thread.is_alive()
    with pytest.raises(StopIteration):
        feed.next()


def test_depth_must_be_positive():
    with pytest.raises(ValueError):
        Prefetcher([], depth=0)
