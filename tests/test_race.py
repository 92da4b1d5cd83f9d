"""race: first to finish wins, the rest are cancelled and waited for, errors propagate."""

from __future__ import annotations

import functools

import pytest

import gofer
from gofer import race


def test_first_to_finish_wins_and_losers_are_cancelled_and_waited(vrun):
    cleaned = []

    def racer(name, delay):
        try:
            gofer.sleep(delay)
            return name
        finally:
            cleaned.append(name)

    def main():
        hub = gofer.get_hub()
        t0 = hub.now()
        got = race(
            functools.partial(racer, "slow", 3),
            functools.partial(racer, "fast", 1),
            lambda: racer("mid", 2),
        )
        assert got == (1, "fast")
        assert hub.now() - t0 == 1
        # every loser finished before race returned
        assert sorted(cleaned) == ["fast", "mid", "slow"]
        assert len(hub.tasks) == 1  # only main is left

    vrun(main)


def test_over_channels_and_arbitrary_code(vrun):
    def main():
        ch = gofer.Chan()

        def feeder():
            gofer.sleep(1)
            ch.send("value")

        gofer.go(feeder)
        assert race(ch.recv, lambda: gofer.sleep(5)) == (0, "value")
        assert race(ch.recv, lambda: gofer.sleep(5) or "timeout") == (1, "timeout")

    vrun(main)


def test_winner_error_propagates(vrun):
    def boom():
        gofer.sleep(1)
        raise KeyError("boom")

    def main():
        with pytest.raises(KeyError, match="boom"):
            race(boom, lambda: gofer.sleep(10))

    vrun(main)


def test_loser_clean_up_failure_is_not_dropped(vrun):
    def bad_cleanup():
        try:
            gofer.sleep(10)
        finally:
            raise OSError("clean-up failed")

    def main():
        with pytest.raises(BaseExceptionGroup) as ei:
            race(lambda: gofer.sleep(1) or "ok", bad_cleanup)
        assert [type(e) for e in ei.value.exceptions] == [OSError]

    vrun(main)


def test_cancelling_the_caller_cancels_all_racers(vrun):
    ended = []

    def racer(i):
        try:
            gofer.sleep(10)
        finally:
            ended.append(i)

    def main():
        t = gofer.go(race, functools.partial(racer, 0), functools.partial(racer, 1))
        gofer.sleep(1)
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()
        assert sorted(ended) == [0, 1]
        assert len(gofer.get_hub().tasks) == 1

    vrun(main)


def test_timeout_around_race(vrun):
    def main():
        with pytest.raises(TimeoutError), gofer.timeout(1):
            race(lambda: gofer.sleep(5), lambda: gofer.sleep(6))
        assert len(gofer.get_hub().tasks) == 1

    vrun(main)


def test_single_racer_and_bad_input(vrun):
    def main():
        assert race(lambda: 42) == (0, 42)
        with pytest.raises(ValueError, match="at least one"):
            race()
        with pytest.raises(TypeError, match="argument 1 is not callable"):
            race(lambda: 1, 2)

    vrun(main)
