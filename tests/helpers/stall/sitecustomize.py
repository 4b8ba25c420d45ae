"""Test helper, imported at start-up by a Python whose PYTHONPATH holds this folder: it stalls the
process at one chosen moment of a save, so that a test can SIGKILL it exactly there.

STALL_AT is a comma-separated sequence of moments `<when>:<file name>`; the process stalls at the
last one, once the earlier ones have happened in this order. when: `before` (the files of the save
are written under temporary names and fsynced, <file name> is not yet renamed into place) or `after`
(<file name> was just renamed into place). Example: "after:latest_state.pth,before:latest_net_G_A.pth"
stalls in the second save of the process, before its first rename. There the process prints
"stalled at <STALL_AT>" to stderr and sleeps until it is killed.
"""
import os
import sys
import time


def _stall_at(spec):
    moments = [tuple(moment.split(":")) for moment in spec.split(",")]
    reached = [0]
    replace = os.replace

    def passing(when, destination):
        if reached[0] < len(moments) and moments[reached[0]] == (when, os.path.basename(destination)):
            reached[0] += 1
            if reached[0] == len(moments):
                print(f"stalled at {spec}", file=sys.stderr, flush=True)
                time.sleep(3600)

    def stalling_replace(source, destination, **kwargs):
        passing("before", destination)
        replace(source, destination, **kwargs)
        passing("after", destination)

    os.replace = stalling_replace


if os.environ.get("STALL_AT"):
    _stall_at(os.environ["STALL_AT"])
