"""The interleaved latency timer: every call runs once per repeat, in a rotating order, each timed on its own;
and the load other processes put on the machine meanwhile."""

import subprocess
import sys
import time

import pytest

from fruitlab.evaluation.latency import CpuTimes, other_busy_cores, time_interleaved


def test_calls_are_interleaved_in_a_rotating_order_and_each_gets_its_own_timings() -> None:
    order: list[str] = []
    calls = {name: (lambda name=name: order.append(name)) for name in ("a", "b", "c")}
    timings = time_interleaved(calls, repeats=3, warmup=1)
    assert order == ["a", "b", "c", "a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert set(timings) == {"a", "b", "c"}
    for stats in timings.values():
        assert set(stats) == {"p50_ms", "p95_ms", "mean_ms"} and 0 <= stats["p50_ms"] <= stats["p95_ms"]


def test_the_load_is_the_busy_time_of_other_processes_per_second() -> None:
    before = CpuTimes(machine_busy_s=100.0, own_s=10.0, wall_s=50.0)
    after = CpuTimes(machine_busy_s=104.0, own_s=11.0, wall_s=52.0)  # 4 busy core-seconds in 2 s, 1 of them ours
    assert other_busy_cores(before, after) == 1.5
    assert other_busy_cores(before, CpuTimes(100.5, 11.0, 52.0)) == 0.0  # tick rounding never gives a negative


def test_a_busy_process_beside_this_one_is_measured_as_load() -> None:
    if CpuTimes.now() is None:
        pytest.skip("no /proc/stat: the load is recorded on Linux only")
    spinner = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"]
    )
    try:
        time.sleep(0.5)  # the spinner runs
        before = CpuTimes.now()
        time.sleep(1.0)
        after = CpuTimes.now()
    finally:
        spinner.kill()
        spinner.wait()
    assert other_busy_cores(before, after) > 0.5
