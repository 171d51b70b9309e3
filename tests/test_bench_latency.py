"""benchmarks/bench_latency.py as a user runs it: eager, TorchScript and ONNX Runtime on one model."""

import re
import subprocess
import sys

from conftest import REPO


def test_benchmark_compares_three_runtimes_and_prints_the_onnx_ratio() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench_latency.py",
            "lenet",
            "--repeats",
            "5",
            "--warmup",
            "1",
            "--batch-sizes",
            "1",
            "4",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = re.findall(r"^\s+(\d+)\s+(eager|torchscript|onnxruntime)\s+[\d.]+", result.stdout, re.MULTILINE)
    assert rows == [(b, r) for b in ("1", "4") for r in ("eager", "torchscript", "onnxruntime")]
    assert re.search(
        r"ONNX Runtime / eager at batch 1 \(p50\): \d+\.\d\d \(goal <= 0.7: (met|not met)\)", result.stdout
    )
