"""Print the headline of a test run's metrics.json: its PSNR against the ground truth next to the PSNR
of returning the input unchanged (the do-nothing baseline that test.py --metrics psnr reports).

    python scripts/metrics_summary.py results/demo_cyclegan/test_latest/metrics.json

prints one line per translation direction, for example
    test PSNR fake_B vs real_B: 23.40 dB against the truth; returning the input unchanged scores 21.90 dB (+1.50 dB)
scripts/quickstart.sh ends with it.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root

from metrics.report import INPUT_UNCHANGED  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402


def summary_lines(report):
    """One line per PSNR comparison of a metrics.json `report` (a dict) that has a do-nothing baseline;
    UserError when there is none."""
    lines = []
    for title, entry in report.get("metrics", {}).get("psnr", {}).items():
        if INPUT_UNCHANGED in entry:
            value, baseline = entry["value"], entry[INPUT_UNCHANGED]
            lines.append(f"test PSNR {title}: {value:.2f} dB against the truth; returning the input unchanged "
                         f"scores {baseline:.2f} dB ({value - baseline:+.2f} dB)")
    if not lines:
        raise UserError("the metrics file has no PSNR with a do-nothing baseline; run test.py with --metrics psnr "
                        "on test images that have a ground truth (e.g. same-named files in testA and testB)")
    return lines


def read_report(path):
    """The report of a metrics.json file; UserError when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as err:
        raise UserError(f"cannot read {path} ({err.strerror or err}); pass the metrics.json that test.py "
                        "--metrics wrote")
    except ValueError as err:
        raise UserError(f"{path} is not valid JSON ({err}); pass the metrics.json that test.py --metrics wrote")


@exit_on_user_error
def main(argv=None):
    """Print the summary of the metrics.json the command line names. argv: default sys.argv[1:]."""
    parser = argparse.ArgumentParser(description="Print a test run's PSNR against the truth next to that of "
                                                 "returning the input unchanged.")
    parser.add_argument("metrics_json", help="the metrics.json test.py --metrics psnr wrote "
                                             "(results/NAME/<phase>_<epoch>/metrics.json)")
    args = parser.parse_args(argv)
    print("\n".join(summary_lines(read_report(args.metrics_json))))


if __name__ == "__main__":
    main()
