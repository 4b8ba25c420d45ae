"""User-facing errors: one clear line naming the problem and the fix, exit status 2.

Code anywhere raises `UserError("what is wrong; what to do")`; the command-line entry points wrap
their `main` with `exit_on_user_error`, which logs `error: <message>` (stderr) and exits with 2,
so a user never sees a traceback for a mistake they can fix.
"""
import errno
import functools
import sys

from util.log import logger

USER_ERROR_STATUS = 2
# Errors of the storage a user can fix: a full disk, a quota, a file-size limit, a read-only or
# forbidden folder. Anything else that raises OSError is a bug worth its traceback.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


class UserError(Exception):
    """A problem the user can fix (bad path, flag, image or checkpoint); the message names the fix."""


def is_storage_error(err):
    """Whether the OSError `err` is a storage problem the user can fix (see STORAGE_ERRNOS)."""
    return isinstance(err, OSError) and err.errno in STORAGE_ERRNOS


def write_error(path, err, outcome="the previous checkpoint is intact"):
    """The UserError for a failed write of `path`: err (an OSError) says why; outcome: what became
    of the files (said at the end of the message)."""
    return UserError(f"could not write {path} ({err.strerror or err}); free disk space, raise the quota or fix "
                     f"the folder's permissions ({outcome})")


def exit_on_user_error(main):
    """Decorate a CLI `main` so that a UserError, or a storage error met anywhere (a write to a full
    disk), becomes one stderr line and exit status 2."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            message = str(err)
        except OSError as err:
            if not is_storage_error(err):
                raise
            message = str(write_error(err.filename or "a file", err, "files written before are kept"))
        sys.stdout.flush()
        logger.error(message)  # "error: <message>" on stderr
        sys.exit(USER_ERROR_STATUS)
    return wrapper
