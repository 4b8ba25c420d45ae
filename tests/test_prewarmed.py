"""The tests' prewarmed processes (tests/prewarmed.py, behind conftest.run_script) behave as `python SCRIPT`
does: arguments, folder, environment, sys.path, output, exit status, traceback, atexit hooks, unseeded random
generators, timeout."""
import os
import subprocess
import sys

import pytest

from conftest import run_script

PROBE = '''
import atexit, json, os, random, sys
atexit.register(print, "atexit hook ran")
print(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "path": sys.path, "main": __name__,
                  "probe": os.environ.get("PROBE_VALUE"), "unbuffered": os.environ.get("PYTHONUNBUFFERED")}))
print("carriage\\rreturn", file=sys.stderr)
how = sys.argv[1]
if how == "raise":
    raise ValueError("boom")
if how == "draw":  # from the generators nobody seeded
    import numpy, torch
    print(random.random(), numpy.random.random(), torch.rand(1).item())
    sys.exit()
if how == "sleep":
    import time
    time.sleep(60)
sys.exit(int(how) if how.isdigit() else how)
'''


@pytest.mark.parametrize("how", ["0", "3", "a message", "raise"])
def test_a_prewarmed_run_is_a_fresh_run(tmp_path, monkeypatch, how):
    probe = tmp_path / "scripts" / "probe.py"
    probe.parent.mkdir()
    probe.write_text(PROBE)
    monkeypatch.setenv("PROBE_VALUE", "from the test")
    fresh = subprocess.run([sys.executable, str(probe), how], cwd=tmp_path, capture_output=True, text=True,
                           env=dict(os.environ, PYTHONUNBUFFERED="1"))
    prewarmed = run_script(probe, how, cwd=tmp_path)
    assert (prewarmed.returncode, prewarmed.stdout, prewarmed.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert fresh.returncode == {"0": 0, "3": 3}.get(how, 1) and "atexit hook ran" in fresh.stdout
    assert ("Traceback" in fresh.stderr) == (how == "raise")


def test_a_prewarmed_run_past_its_timeout_is_ended(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    with pytest.raises(subprocess.TimeoutExpired):
        run_script(probe, "sleep", cwd=tmp_path, timeout=1)


def test_prewarmed_runs_draw_different_random_numbers(tmp_path):
    # As fresh interpreters, whose unseeded generators start from the system's entropy (e.g. dropout at test time).
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    first, second = (run_script(probe, "draw", cwd=tmp_path).stdout.splitlines()[1].split() for _ in range(2))
    assert len(first) == 3 and all(a != b for a, b in zip(first, second))
