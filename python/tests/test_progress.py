"""Progress of long computations: tqdm's bar where tqdm is installed, plain text
otherwise, nothing when switched off; the count never passes its total and ends
complete; an exception from the display cancels the job cleanly."""

from __future__ import annotations

import re
import sys

import pyarrow.parquet as pq
import pytest

import blockwise as bw
from blockwise import _blockwise, _progress
from conftest import leftovers, write_table_csv

# Long enough to report several times: a sort spilling under a small budget.
SORT = dict(sort_by="id4", memory_limit="4MiB", threads=2, memory_spill="off",
            memory_pause="off", memory_terminate="off")


@pytest.fixture
def big_csv(tmp_path):
    path = tmp_path / "big.csv"
    write_table_csv(path, 300_000, seed=3)
    return path


@pytest.fixture
def immediate(monkeypatch):
    """Show from the first report, and plain text on every report."""
    monkeypatch.setattr(_progress, "DELAY_S", 0.0)
    monkeypatch.setattr(_progress, "PLAIN_EVERY_S", 0.0)


def test_tqdm_shows_bytes_of_input_and_never_passes_100_percent(big_csv, tmp_path, capsys, immediate,
                                                                monkeypatch):
    # As in a terminal: tqdm draws only there (or in a notebook).
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    stats = bw.convert(big_csv, tmp_path / "s.parquet", **SORT)
    assert stats["rows"] == 300_000
    err = capsys.readouterr().err
    percents = [int(p) for p in re.findall(r"convert:\s+(\d+)%\|", err)]
    assert len(percents) >= 2, err
    assert all(0 <= p <= 100 for p in percents), percents
    assert percents == sorted(percents), percents
    # Bytes, scaled (tqdm's "k"/"M" with unit B), and the bar's message.
    assert re.search(r"\d(\.\d+)?[kM]?/\d+(\.\d+)?[kM]?B? ", err) or "B/s" in err, err
    assert "input" in err, err


def test_plain_lines_into_a_pipe_or_a_log_reaching_100_percent(big_csv, tmp_path, capsys,
                                                               immediate):
    # stderr captured here is not a terminal: no redrawn frames, plain lines.
    bw.convert(big_csv, tmp_path / "s.parquet", **SORT)
    err = capsys.readouterr().err
    assert "\r" not in err and "|" not in err, err[:500]
    lines = [l for l in err.splitlines() if l.startswith("convert:")]
    assert len(lines) >= 2, lines
    percents = [float(re.match(r"convert:\s+([\d.]+)%", l).group(1)) for l in lines]
    assert all(0 <= p <= 100 for p in percents), percents
    assert percents == sorted(percents), percents
    assert percents[-1] == 100.0, lines[-1]
    assert "MiB/" in lines[-1], lines[-1]


def test_switched_off_by_config_or_by_the_call(big_csv, tmp_path, capsys, immediate):
    with bw.config.set(progress=False):
        bw.convert(big_csv, tmp_path / "a.parquet", **SORT)
    assert capsys.readouterr().err == ""
    bw.convert(big_csv, tmp_path / "b.parquet", progress=False, **SORT)
    assert capsys.readouterr().err == ""
    plan = bw.Plan.convert(big_csv, tmp_path / "c.parquet", **SORT)
    plan.run(progress=False, threads=2)
    assert capsys.readouterr().err == ""
    assert pq.read_metadata(tmp_path / "c.parquet").num_rows == 300_000


def test_a_plan_run_reports_too(big_csv, tmp_path, capsys, immediate, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    plan = bw.Plan.convert(big_csv, tmp_path / "p.parquet", **SORT)
    plan.run(threads=2)
    assert re.search(r"run:\s+\d+%\|", capsys.readouterr().err)


def test_an_exception_from_the_display_cancels_the_job_and_leaves_nothing(big_csv, tmp_path):
    seen = []

    def stop(done, total, unit, message):
        seen.append((done, total, unit))
        raise RuntimeError("stop here")

    dst = tmp_path / "x.parquet"
    with pytest.raises(RuntimeError, match="stop here"):
        _blockwise.convert(str(big_csv), str(dst), ["--sort-by=id4", "--memory-limit=4MiB"], stop)
    assert seen and seen[0][2] == "bytes" and seen[0][0] <= seen[0][1]
    assert not dst.exists()
    assert leftovers(tmp_path) == []
