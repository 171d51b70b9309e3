"""benchmarks/bench_latency.py as a user runs it: eager, torch.export, ONNX Runtime and its int8 model on one model,
timed side by side, with no deprecated torch API on the way."""

import re
import subprocess
import sys

from conftest import REPO

RUNTIMES = ("eager", "torch.export", "onnxruntime", "ort-int8")


def test_benchmark_compares_four_forms_and_prints_the_onnx_ratio() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "error::FutureWarning",  # torch's deprecated APIs warn so: the benchmark uses none
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
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    pattern = rf"^\s+(\d+)\s+({'|'.join(map(re.escape, RUNTIMES))})\s+[\d.]+"
    rows = re.findall(pattern, result.stdout, re.MULTILINE)
    assert rows == [(b, r) for b in ("1", "4") for r in RUNTIMES]
    int8_agreement = r"^int8: max \|diff\| \S+, top class as eager's for \d+% of the batch$"
    assert len(re.findall(int8_agreement, result.stdout, re.MULTILINE)) == 2
    assert re.search(
        r"ONNX Runtime / eager at batch 1 \(p50\): \d+\.\d\d \(goal <= 0.7: (met|not met)\)", result.stdout
    )
