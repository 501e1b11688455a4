"""The benchmark harness runs end to end in its quick form and reports every benchmark."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN = REPO_ROOT / "benchmarks" / "run.py"
COMMITTED = REPO_ROOT / "benchmarks" / "RESULTS.md"
SECTIONS = {
    "1. Results to DataFrame": (
        r"\| 100,000 \| \d+ \| [\d.]+ s \| [\d.]+ s \| [\d.]+ s \| [\d.]+ s \([\d,]+\) \| "
        r"\*\*[\d.]+x\*\* \| \*\*[\d.]+x\*\*"
    ),
    "2. Server paging": r"\| 100,000 \| 5000 \| \d+ \| [\d.]+ ms \| [\d.]+ ms \| \*\*[\d.]+x\*\*",
    "3. Polling": r"\| 2 s \| plain \| \d+ \| [\d.]+ s \| -?[\d.]+ s \| \*\*-?[\d.]+%\*\*",
    "4. Kernel start": r"\| python3 \| \d+ \| [\d.]+ ms \| [\d.]+ ms \|",
    "5. `%%linkis select 1`": r"\| 5 \| [\d.]+ ms \| [\d.]+ ms \| \*\*-?[\d.]+ ms\*\*",
    "6. Server load": r"\| throughput \| \*\*[\d.]+ jobs/s\*\* \|",
    "7. A result too big for memory": (
        r"\| `job.download\(x.parquet\)` \| \d+ \| [\d.]+ s \| \*\*[\d.]+x\*\* \|.*\n"
        r"\| `job.iter_batches\(\)` \| \d+ \| [\d.]+ s \| \*\*[\d.]+x\*\* \|"
    ),
    "9. SQL in a per-user engine process": (
        r"\| first SQL job of each of \d+ users \(their engine starts\) \| \d+ \| [\d.]+ ms \| "
        r"\*\*[\d.]+x\*\* \|[\s\S]*"
        r"\| server growth / engine growth \| - \| - \| \*\*[\d.]+\*\* \|"
    ),
}


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def test_quick_run_reports_every_benchmark_with_numbers(tmp_path: Path) -> None:
    committed_before = _digest(COMMITTED)
    output = tmp_path / "RESULTS.md"

    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--output", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    report = output.read_text()
    assert "FAILED" not in report, report
    for title, figures in SECTIONS.items():
        assert f"## {title}" in report, f"section {title!r} missing:\n{report}"
        body = report.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
        assert re.search(figures, body), f"no figures in section {title!r}:\n{body}"
    assert "`python benchmarks/run.py --quick`" in report
    assert re.search(r"- CPU: \d+ cores", report) and "- Python: 3." in report
    assert re.search(r"\| dataframe \| time vs baseline, 100,000 rows \| [\d.]+x \|", report)
    assert _digest(COMMITTED) == committed_before, "the quick run overwrote the committed report"
