"""Run the repository's entry points (train.py, test.py, scripts/...) as `python SCRIPT ARGS` would, in a
new process that skips importing torch: it is forked from a waiting process (multiprocessing's fork
server) that imported the heavy third-party libraries once. Importing them costs seconds of CPU per
process, most of what a test's short run or refused input costs. The project's own modules and the script
are imported anew in every process, from the sys.path a fresh interpreter has, so that a missing import
or path fails as it would for a user; only the libraries of HEAVY_LIBRARIES are already loaded (their
import-time settings are those of the environment the fork server started with: the tests' own). Unlike
fresh interpreters, all share the fork server's hash seed (PYTHONHASHSEED): sets of strings iterate in
the same order in every run."""
import atexit
import functools
import io
import json
import multiprocessing
import os
import random
import resource
import runpy
import subprocess
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor

import numpy
import torch

HEAVY_LIBRARIES = ["numpy", "PIL.Image", "scipy.linalg", "torch", "torchvision"]


@functools.cache
def fork_server():
    """The multiprocessing context whose processes are forked from a server holding HEAVY_LIBRARIES and
    this module (which the forked processes run); the server starts with the first process."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([*HEAVY_LIBRARIES, __name__])
    return context


@functools.cache
def fresh_sys_path():
    """sys.path of a fresh `python SCRIPT` after its first entry (the script's folder): not the tests',
    which hold the repository and tests/ folders."""
    probe = subprocess.run([sys.executable, "-c", "import json, sys; print(json.dumps(sys.path[1:]))"],
                           capture_output=True, text=True, check=True)
    return json.loads(probe.stdout)


def run_prewarmed(script, args, cwd, env, timeout, file_size_limit=None):
    """Run `python script *args` in cwd with the environment env (a dict), in a process forked from the
    fork server; return a subprocess.CompletedProcess with its text output, as subprocess.run(...,
    capture_output=True, text=True) does; raise subprocess.TimeoutExpired after timeout seconds.
    file_size_limit: bytes no file of the process may grow beyond (RLIMIT_FSIZE), as if the disk filled up."""
    command = [sys.executable, str(script), *map(str, args)]
    readers, writers = zip(*(fork_server().Pipe(duplex=False) for _ in ("stdout", "stderr")))
    process = fork_server().Process(target=become_script, args=(
        str(script), command[2:], str(cwd), env, fresh_sys_path(), writers, file_size_limit))
    with ThreadPoolExecutor(max_workers=2) as pool:
        try:
            process.start()
        finally:
            for writer in writers:  # the process holds its own copies: reading ends when it (and its children) ends
                writer.close()
        outputs = [pool.submit(read_text, reader) for reader in readers]
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(command, timeout, *(output.result() for output in outputs))
        status = process.exitcode
        process.close()
        return subprocess.CompletedProcess(command, status, *(output.result() for output in outputs))


def read_text(reader):
    """Everything written to the pipe `reader` until its writers close it, decoded as text=True does
    (the locale's encoding; \r and \r\n read as \n)."""
    with reader, io.TextIOWrapper(io.FileIO(reader.fileno(), closefd=False)) as text:
        return text.read()


def become_script(script, args, cwd, env, sys_path, writers, file_size_limit):
    """In the forked process: run `script` as __main__ the way `python script *args` does (its folder first
    on a fresh sys.path, unbuffered output to the two pipes, exit status, traceback, atexit hooks)."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    if file_size_limit:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
    sys.stdout = redirected(1, writers[0], sys.__stdout__)
    sys.stderr = redirected(2, writers[1], sys.__stderr__)
    sys.argv = [script, *args]
    sys.path[:] = [os.path.dirname(script), *sys_path]
    draw_new_seeds()
    try:
        runpy.run_path(script, run_name="__main__")
        status = 0
    except SystemExit as stop:
        status = exit_status(stop.code)
    except BaseException as error:
        print_traceback_from(script, error)
        status = 1
    atexit._run_exitfuncs()  # the process ends with os._exit, which runs no atexit hooks itself
    sys.exit(status)


def draw_new_seeds():
    """Seed Python's, NumPy's and torch's global random generators anew from the system, as a fresh
    interpreter does: else every process would draw the fork server's numbers (dropout masks, unseeded
    weights alike in every run)."""
    random.seed()
    numpy.random.seed()
    torch.seed()


def redirected(fd, writer, original):
    """Point file descriptor fd at the pipe `writer`; return a text stream on it like `original`'s,
    unbuffered as with PYTHONUNBUFFERED=1."""
    os.dup2(writer.fileno(), fd)
    writer.close()
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding=original.encoding, errors=original.errors,
                            write_through=True)


def print_traceback_from(script, error):
    """Print the traceback of an uncaught error as Python does for `python script`: from the script's
    first frame on, without the frames of runpy and become_script above it."""
    frames = error.__traceback__
    while frames and frames.tb_frame.f_code.co_filename != script:
        frames = frames.tb_next
    traceback.print_exception(type(error), error, frames or error.__traceback__)


def exit_status(code):
    """The exit status Python gives `sys.exit(code)`: None is 0, an integer itself, anything else is
    printed to stderr and is 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
