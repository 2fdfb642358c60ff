"""``bw.performance_report``: one self-contained HTML page for every blockwise job
inside the block, local or on Dask workers, its embedded data checked against the
jobs' own statistics."""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict

import pytest

import blockwise as bw
from conftest import write_table_csv

RSS_OFF = {"memory_spill": "off", "memory_pause": "off", "memory_terminate": "off"}


def embedded(path) -> dict:
    html = path.read_text()
    # Nothing fetched: no source, link, style import or script from elsewhere (the
    # SVG namespace URI names, it does not fetch).
    assert not re.search(r'(src|href)\s*=\s*["\']?\s*(https?:)?//|url\(|@import', html), \
        "a report fetches nothing"
    m = re.search(r'<script type="application/json" id="blockwise-report-data">(.*?)</script>',
                  html, re.S)
    assert m, "no embedded data"
    return json.loads(m.group(1))


def check_rows(data: dict) -> None:
    """Every task that ran has one bar on one row; bars on a row never overlap."""
    by_row = defaultdict(list)
    for t in data["tasks"]:
        if t.get("skipped"):
            assert t["thread"] is None
            continue
        assert t["start_s"] <= t["end_s"], t
        by_row[t["thread"]].append((t["start_s"], t["end_s"]))
    for bars in by_row.values():
        bars.sort()
        for (_, end), (start, _) in zip(bars, bars[1:]):
            assert end <= start + 1e-6, bars


def test_local_jobs_make_one_report(tmp_path):
    src = tmp_path / "t.csv"
    write_table_csv(src, 40_000, seed=4)
    report = tmp_path / "report.html"
    with bw.performance_report(report):
        a = bw.convert(src, tmp_path / "a.parquet", sort_by="id4", memory_limit="2MiB",
                       progress=False, **RSS_OFF)
        plan = bw.Plan.convert(src, tmp_path / "b.parquet", blocksize="64KiB")
        b = plan.run(progress=False)
    data = embedded(report)
    ran = [t for t in data["tasks"] if not t.get("skipped")]
    assert len(ran) == a["tasks"] + b["tasks"]
    assert data["stats"]["tasks"] == a["tasks"] + b["tasks"]
    assert data["stats"]["spilled_bytes"] == a["spilled_bytes"] + b["spilled_bytes"] > 0
    assert sum(m["bytes"] for m in data["spills"]) == data["stats"]["spilled_bytes"]
    assert "convert(" in data["job"]["command"] and "Plan.run(" in data["job"]["command"]
    ops = {o["op"] for o in data["ops"]}
    assert {"sort_run", "merge_range", "read_table_partition"} <= ops
    # The second job starts after the first ends: one time line.
    first_plan_tasks = len(data["tasks"]) - len(plan)
    assert max(t["end_s"] for t in ran[:first_plan_tasks]) <= min(
        t["start_s"] for t in ran[first_plan_tasks:]) + 1e-6
    check_rows(data)
    times = [s["t_s"] for s in data["samples"]]
    assert times == sorted(times) and len(times) >= 2


def test_an_existing_report_is_refused_before_anything_runs(tmp_path):
    src = tmp_path / "t.csv"
    write_table_csv(src, 1_000)
    report = tmp_path / "r.html"
    report.write_text("mine")
    with pytest.raises(FileExistsError):
        with bw.performance_report(report):
            bw.convert(src, tmp_path / "x.parquet", progress=False)
    assert report.read_text() == "mine"
    assert not (tmp_path / "x.parquet").exists()
    with bw.performance_report(report, overwrite=True):
        bw.convert(src, tmp_path / "x.parquet", progress=False)
    assert embedded(report)["stats"]["tasks"] > 0


def test_a_block_without_a_job_writes_nothing(tmp_path):
    with bw.performance_report(tmp_path / "none.html"):
        pass
    assert not (tmp_path / "none.html").exists()


def test_a_report_at_a_jobs_own_path_is_refused_before_the_job(tmp_path):
    src = tmp_path / "t.csv"
    write_table_csv(src, 1_000)
    before = src.read_bytes()
    with pytest.raises(ValueError, match="t.csv"):
        with bw.performance_report(src, overwrite=True):
            bw.convert(src, tmp_path / "x.parquet", progress=False)
    assert src.read_bytes() == before
    assert not (tmp_path / "x.parquet").exists()
    dst = tmp_path / "y.parquet"
    with pytest.raises(ValueError, match="y.parquet"):
        with bw.performance_report(dst):
            bw.convert(src, dst, progress=False)
    assert not dst.exists()
    plan = bw.Plan.convert(src, tmp_path / "z.parquet")
    with pytest.raises(ValueError, match="blockwise-plan"):
        with bw.performance_report(os.path.join(plan.workdir, "r.html")):
            plan.run(progress=False)
    assert not (tmp_path / "z.parquet").exists()


def test_what_is_wrong_with_the_report_is_said_at_once_and_never_hides_the_blocks_error(tmp_path):
    src = tmp_path / "t.csv"
    write_table_csv(src, 1_000)
    with pytest.raises(FileNotFoundError):
        with bw.performance_report(tmp_path / "missing" / "r.html"):
            pytest.fail("the block ran")
    (tmp_path / "adir").mkdir()
    with pytest.raises(ValueError, match="not a file"):
        with bw.performance_report(tmp_path / "adir", overwrite=True):
            pytest.fail("the block ran")
    report = tmp_path / "r.html"
    with pytest.raises(ValueError, match="already open"):
        with bw.performance_report(report):
            with bw.performance_report(report):
                pass
    # The block's own error comes out, and the report of what ran is written.
    with pytest.raises(KeyError, match="mine"):
        with bw.performance_report(report):
            bw.convert(src, tmp_path / "ok.parquet", progress=False)
            raise KeyError("mine")
    assert embedded(report)["stats"]["tasks"] > 0


def test_a_job_that_fails_inside_the_block_is_in_the_report(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,4\nx,5\n")
    report = tmp_path / "failed.html"
    with pytest.raises(ValueError, match="bad.csv"):
        with bw.performance_report(report):
            bw.convert(bad, tmp_path / "b.parquet", dtype={"a": "int64"}, progress=False)
    data = embedded(report)
    assert data["job"]["status"] == "failed", data["job"]
    assert "bad.csv" in data["job"]["error"]
    assert not (tmp_path / "b.parquet").exists()
