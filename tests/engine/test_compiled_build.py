"""The compiled build of the engine (setup.py, ledger.compiled) behaves exactly as its sources:
the same workloads through both give the same events and state hashes, event for event; and
a source that changed since the build runs from source, never as its stale extension."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.compiled import INTERPRETED_ENV, MANIFEST, source_digest

ROOT = Path(__file__).parents[2]


def build_env(interpreted: bool) -> dict[str, str]:
    env = {**os.environ, INTERPRETED_ENV: "1" if interpreted else "0"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def trace(interpreted: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.engine.build_trace"],
        cwd=ROOT,
        env=build_env(interpreted),
        stdout=subprocess.PIPE,
        text=True,
    )


def lines_of(process: subprocess.Popen[str]) -> list[str]:
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0
    return out.splitlines()


def test_compiled_and_interpreted_builds_emit_the_same_events_and_hashes() -> None:
    compiled, interpreted = trace(interpreted=False), trace(interpreted=True)
    compiled_lines, interpreted_lines = lines_of(compiled), lines_of(interpreted)
    assert interpreted_lines[0] == "build interpreted"
    if compiled_lines[0] == "build interpreted":
        pytest.skip("no compiled build here (a source tree never installed)")
    assert compiled_lines[0] == "build compiled", "stale: reinstall (`make venv`)"
    pairs = zip(compiled_lines[1:], interpreted_lines[1:], strict=True)
    for number, (got, want) in enumerate(pairs, 1):
        if got != want:
            run = next(line for line in reversed(interpreted_lines[:number]) if line[:4] == "run ")
            pytest.fail(f"{run}, line {number}:\ncompiled:    {got}\ninterpreted: {want}")


@pytest.mark.skipif(not MANIFEST.exists(), reason="no compiled build here")
def test_a_changed_source_runs_interpreted_with_a_warning(tmp_path: Path) -> None:
    """A copy of the built tree with one compiled module's source edited."""
    copy = tmp_path / "tree"
    for package in ("xch", "ledger", "engine"):
        shutil.copytree(ROOT / package, copy / package)
    for library in ROOT.glob("exchange_compiled__mypyc.*"):
        shutil.copy(library, copy)
    edited = copy / "engine" / "book.py"
    edited.write_text(edited.read_text() + "\n# edited after the build\n")
    assert source_digest(edited) != source_digest(ROOT / "engine" / "book.py")
    probe = "import engine, engine.core as c; print(engine.BUILD, c.__file__)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=copy,
        env={**build_env(interpreted=False), "PYTHONPATH": str(copy)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["stale", str(copy / "engine" / "core.py")]
    assert "stale (engine.book: changed since the build" in result.stderr
