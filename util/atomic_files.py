"""Writing a set of files as one commit: each file goes to an fsynced temporary name first, and only when
all are written are they renamed into place, so a crash or a full disk mid-save never leaves a broken
file in place of a good one. Imports nothing of ours but the error helpers."""
import errno
import glob
import os
import tempfile

import torch

from util.errors import write_error

TEMPORARY_PREFIX = ".tmp_"


def _new_file_mode():
    """The permissions open() gives a new file under this process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_NEW_FILE_MODE = _new_file_mode()


def remove_stale_temporaries(folder):
    """Delete temporary files left by saves that a killed process never finished."""
    for path in glob.glob(os.path.join(glob.escape(folder), TEMPORARY_PREFIX + "*.pth")):
        os.remove(path)


class _ErrorRecordingStream:
    """A binary stream that remembers the OSError of a failed write. torch.save turns such an error
    into a RuntimeError without its errno, and the user needs to hear "No space left on device"."""

    def __init__(self, stream):
        self.stream, self.error = stream, None

    def write(self, data):
        try:
            return self.stream.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self):
        self.stream.flush()


def _write_temporary(obj, folder):
    """Write `obj` (bytes as they are, anything else with torch.save) to a new fsynced temporary
    file in `folder` and return its path; OSError when the disk refuses."""
    handle, tmp_path = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, suffix=".pth", dir=folder)
    try:
        os.chmod(tmp_path, _NEW_FILE_MODE)  # mkstemp makes files private; saved files are shared as open() makes them
        with os.fdopen(handle, "wb") as raw:
            stream = _ErrorRecordingStream(raw)
            try:
                if isinstance(obj, bytes):
                    stream.write(obj)
                else:
                    torch.save(obj, stream)
                stream.flush()
            except RuntimeError:
                if stream.error is None:
                    raise
                raise stream.error
            os.fsync(raw.fileno())
    except BaseException:
        os.remove(tmp_path)
        raise
    return tmp_path


def _fsync_folder(folder):
    """Make renames in `folder` survive a power cut (a no-op where folders cannot be opened)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems do not sync folders; the renames are still atomic
    finally:
        os.close(handle)


def write_files(files):
    """Write the (path, obj) pairs of `files` as one commit: every object goes to an fsynced temporary
    file first; only when all are written are they renamed into place, in the given order (put the
    file that marks the set complete last), and the folders fsynced.

    obj: bytes (written as they are) or anything torch.save takes. When a write fails (disk full,
    quota, read-only folder, a folder in the way) every temporary file is removed, the files in place
    are untouched and a UserError names the path; other errors (an object that cannot be pickled)
    propagate the same way. A rename that fails half-way leaves the earlier files renamed and the
    marker not: the set stays incomplete, which train_state.repair_weight_files mends on resume.
    """
    written = []
    try:
        for path, obj in files:
            try:
                if os.path.exists(path) and not os.path.isfile(path):
                    raise IsADirectoryError(errno.EISDIR, "something that is not a file is in the way", path)
                written.append((_write_temporary(obj, os.path.dirname(os.path.abspath(path))), path))
            except OSError as err:
                raise write_error(path, err)
        for index, (tmp_path, path) in enumerate(written):
            try:
                os.replace(tmp_path, path)
            except OSError as err:
                del written[:index]  # those are in place; the temporaries left are removed below
                raise write_error(path, err)
    except BaseException:
        for tmp_path, _ in written:
            if os.path.exists(tmp_path):
                os.remove(tmp_path)
        raise
    for folder in {os.path.dirname(os.path.abspath(path)) for path, _ in files}:
        _fsync_folder(folder)
