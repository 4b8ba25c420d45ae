"""User-facing errors: one clear line naming the problem and the fix, exit status 2.

Code anywhere raises `UserError("what is wrong; what to do")`; the command-line entry points wrap
their `main` with `exit_on_user_error`, which prints `error: <message>` to stderr and exits with 2,
so a user never sees a traceback for a mistake they can fix.
"""
import functools
import sys

USER_ERROR_STATUS = 2


class UserError(Exception):
    """A problem the user can fix (bad path, flag, image or checkpoint); the message names the fix."""


def exit_on_user_error(main):
    """Decorate a CLI `main` so that a UserError becomes one stderr line and exit status 2."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            sys.stdout.flush()
            print(f"error: {err}", file=sys.stderr)
            sys.exit(USER_ERROR_STATUS)
    return wrapper
