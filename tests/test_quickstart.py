"""scripts/quickstart.sh without running it (it trains for minutes): its summary helper prints the test
PSNR next to the do-nothing baseline from a metrics.json, and the flags it trains with are the
recommended configuration that the README names."""
import json
import re
import shlex

import pytest

from conftest import REPO_ROOT, entry_point

summary = entry_point("scripts/metrics_summary.py")


def write_report(folder, psnr):
    """A metrics.json holding `psnr` (comparison title -> entry) and an SSIM entry; return its path."""
    path = folder / "metrics.json"
    ssim = {"fake_B vs real_B": {"value": 0.9, "input_unchanged": 0.8, "images": {"pairs": 6}}}
    path.write_text(json.dumps({"metrics": {"psnr": psnr, "ssim": ssim}, "protocol": {}, "notes": []}))
    return path


def test_summary_prints_the_psnr_of_each_direction_next_to_the_baseline(tmp_path, capsys):
    path = write_report(tmp_path, {
        "fake_B vs real_B": {"value": 23.4049, "input_unchanged": 21.9, "images": {"pairs": 6}},
        "fake_A vs real_A": {"value": 20.0, "input_unchanged": 22.874, "images": {"pairs": 6}},
        "fake vs reference": {"value": 30.0, "images": {"pairs": 6}}})  # no baseline: left out
    summary.main([str(path)])
    assert capsys.readouterr().out.splitlines() == [
        "test PSNR fake_B vs real_B: 23.40 dB against the truth; returning the input unchanged scores 21.90 dB "
        "(+1.50 dB)",
        "test PSNR fake_A vs real_A: 20.00 dB against the truth; returning the input unchanged scores 22.87 dB "
        "(-2.87 dB)"]


@pytest.mark.parametrize("content, message", [
    (None, r"cannot read .*metrics\.json \(No such file or directory\); pass the metrics\.json .*"),
    ("{", r".*metrics\.json is not valid JSON .*; pass the metrics\.json .*"),
    ({"fake_B vs real_B": {"value": 23.4, "images": {"pairs": 6}}},
     r"the metrics file has no PSNR with a do-nothing baseline; run test\.py with --metrics psnr .*"),
])
def test_summary_mistakes_are_one_error_line(tmp_path, capfd, content, message):
    path = tmp_path / "metrics.json"
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        write_report(tmp_path, content)
    with pytest.raises(SystemExit) as stopped:
        summary.main([str(path)])
    assert stopped.value.code == 2
    assert re.fullmatch(f"error: {message}", capfd.readouterr().err.strip())


def test_quickstart_trains_the_readmes_recommended_flags_and_ends_with_the_summary():
    script = (REPO_ROOT / "scripts" / "quickstart.sh").read_text()
    recommended = shlex.split(re.search(r"^RECOMMENDED=\((.*)\)", script, re.MULTILINE).group(1))
    named = re.search(r"recommended configuration is `([^`]*)`", (REPO_ROOT / "README.md").read_text()).group(1)
    assert recommended == shlex.split(named)
    assert '"${RECOMMENDED[@]}"' in script.split("train.py", 1)[1].splitlines()[0]
    assert "--metrics psnr" in script.split("test.py", 1)[1].splitlines()[0]
    assert script.rstrip().splitlines()[-1].endswith('scripts/metrics_summary.py "$metrics_json"')
