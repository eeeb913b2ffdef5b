"""The perf scripts that are quick on a CPU run end to end and write their tables: the
static kernel report (compiled for sm_90, read back from the cubin) and the bind-time
benchmark (fresh processes, cold and warm Triton cache)."""

import csv
import os
import pathlib
import subprocess
import sys

import pytest

PERF = pathlib.Path(__file__).resolve().parents[1] / "perf"


def _run(script: str, *args: str, results: pathlib.Path) -> list[dict]:
    env = {**os.environ, "TRITONSYM_PERF_RESULTS": str(results)}
    result = subprocess.run([sys.executable, str(PERF / script), *args], capture_output=True, text=True,
                            timeout=600, env=env, cwd=PERF)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (table,) = results.glob("*.csv")
    assert table.with_suffix(".md").exists()
    with open(table) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_kernel_report_reads_the_compiled_kernels(tmp_path):
    rows = _run("kernel_report.py", "--only", "softmax output loss-scaled", "--jobs", "1", results=tmp_path)
    assert [(r["kernel"], r["dtype"]) for r in rows] == [("softmax output loss-scaled", "fp32"),
                                                         ("softmax output loss-scaled", "bf16")]
    for row in rows:
        assert row["fits"] == "yes" and row["spilled B"] == "0"
        assert int(row["registers"]) > 0
        assert row["tensor cores"] == "none (FMA)"
        assert "16 B" in row["plain loads"]  # the JIT's alignment marks reach the compiler: 16-byte loads


@pytest.mark.slow
def test_bind_benchmark_runs_cold_and_warm(tmp_path):
    rows = _run("bench_bind.py", "--small-only", results=tmp_path)
    assert [r["cache"] for r in rows] == ["cold", "warm"]
    for row in rows:
        assert row["network"] == "784-128-64-10"
        assert float(row["ready s"]) == pytest.approx(float(row["bind s"]) + float(row["first step s"]), abs=0.011)


def test_a_table_is_on_disk_after_every_row_and_marked_partial_until_complete(tmp_path, monkeypatch):
    import common

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    table = common.Table("demo", expected=3, notes="The notes.", chart=dict(x="size", series=["ms"]))
    for size in (1, 2):
        table.add({"size": size, "ms": 0.5 * size})
        with open(table.path.with_suffix(".csv")) as f:
            assert [int(r["size"]) for r in csv.DictReader(f)] == list(range(1, size + 1))
        text = table.path.read_text()
        assert f"**Partial: {size} of 3 rows**" in text and "The notes." in text
        assert not table.path.with_suffix(".png").exists()  # the chart waits for the whole table
    table.add({"size": 3, "ms": 1.5})
    text = table.path.read_text()
    assert "Partial" not in text and "The notes." in text and "| 3 | 1.5 |" in text


def test_a_table_filled_in_two_passes_stays_partial_while_a_column_is_pending(tmp_path, monkeypatch):
    # bench_mlp and bench_transformer: every row first, torch.compile's costly column after,
    # row by row; a run cut during the second pass leaves every row, marked partial.
    import common

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    table = common.Table("demo", expected=2, notes="The notes.")
    states = [{"size": 1, "compile": None}, {"size": 2, "compile": None}]

    def row(state):
        return {"size": state["size"], "compile ms": "" if state["compile"] is None else state["compile"]}

    for state in states:
        table.add(row(state))
    assert "Partial" not in table.path.read_text()
    seen = []

    def add_compile(state):  # what the file says while a row's compile runs
        seen.append(table.path.read_text())
        state["compile"] = 0.5 * state["size"]

    common.fill_compile_column(table, states, add_compile, row)
    assert "**Partial: torch.compile's column for 2 of 2 rows**" in seen[0] and "| 1 |  |" in seen[0]
    assert "**Partial: torch.compile's column for 1 of 2 rows**" in seen[1] and "| 1 | 0.5 |" in seen[1]
    text = table.path.read_text()
    assert "Partial" not in text and "| 1 | 0.5 |\n| 2 | 1.0 |" in text and "The notes." in text
