"""``bench.bench_usage_scan`` end to end, tiny: the job's per-folder stats equal ``find``'s and a listing's.

Asserted is what the run checks (the stats equal the truth on host and S3) and that the report has a row per
workspace; no time is asserted.
"""

from __future__ import annotations

import pytest

from bench import bench_usage_scan


@pytest.mark.timeout(300)
def test_tiny_scan_run_matches_the_truth(tmp_path, monkeypatch, capsys) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nkept\n")
    monkeypatch.setattr(bench_usage_scan, "RESULTS", results)
    assert bench_usage_scan.main(["--quick"]) == 0
    text = results.read_text()
    assert text.startswith("# Results\n\nkept\n")
    section = text[text.index(bench_usage_scan.BEGIN):text.index(bench_usage_scan.END)]
    rows = [line for line in section.splitlines() if line.startswith("| host") or line.startswith("| S3")]
    assert len(rows) == 2 and all("| yes |" in row for row in rows), rows
