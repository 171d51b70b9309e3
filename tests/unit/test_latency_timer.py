"""The interleaved latency timer: every call runs once per repeat, in a rotating order, each timed on its own."""

from fruitlab.evaluation.latency import time_interleaved


def test_calls_are_interleaved_in_a_rotating_order_and_each_gets_its_own_timings() -> None:
    order: list[str] = []
    calls = {name: (lambda name=name: order.append(name)) for name in ("a", "b", "c")}
    timings = time_interleaved(calls, repeats=3, warmup=1)
    assert order == ["a", "b", "c", "a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert set(timings) == {"a", "b", "c"}
    for stats in timings.values():
        assert set(stats) == {"p50_ms", "p95_ms", "mean_ms"} and 0 <= stats["p50_ms"] <= stats["p95_ms"]
