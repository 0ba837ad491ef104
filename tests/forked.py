"""fer's commands as real processes without each paying the ~6 CPU-s of importing torch, Lightning and MLflow.

A test that needs a command as a process (signals, kill -9, a sweep's exit status, a served port) used to start
`python -m fer.<command>`; most of each such process was interpreter start and imports, and ~50 of them made up a
third of the suite. Here a multiprocessing fork server imports fer's commands once, and each command is a child
forked from it: its own pid (and session when asked), default signal handlers, the test's working directory,
environment and pipes, run as `-m` runs it, and exiting as the interpreter would (threads joined, atexit run).
What a fresh interpreter itself must prove (the wheel, import side effects, a bad-input line) still uses one.
"""

from __future__ import annotations

import atexit
import functools
import io
import multiprocessing
import os
import runpy
import selectors
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
from multiprocessing import reduction

# fer's commands, and fer.runs.train, which fer.train imports only once a config is composed
COMMANDS = ["fer.train", "fer.runs.train", "fer.evaluate", "fer.predict", "fer.demo.__main__", "fer.delivery",
            "fer.report", "fer.explain.__main__"]


@functools.cache
def _fork_server():
    """The fork server, started (and fer imported in it) at the first command of this test process."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(COMMANDS)
    return context


class _Fd:
    """A file descriptor handed to the forked child (multiprocessing passes it over the fork server's socket)."""

    def __init__(self, fd: int):
        self.fd = fd

    def __reduce__(self):
        return _rebuild_fd, (reduction.DupFd(self.fd),)


def _rebuild_fd(dup) -> _Fd:
    return _Fd(dup.detach())


def exit_status(e: SystemExit) -> int:
    """The status an interpreter exits with on this SystemExit: its code, 0 for None, 1 for a message."""
    return e.code if isinstance(e.code, int) else 0 if e.code is None else 1


def _run(module: str, args: list[str], cwd: str, env: dict, fds: list[_Fd], new_session: bool) -> None:
    """The child: become the command's process, run it as `python -m module args` would, exit with its status."""
    if new_session:
        os.setsid()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the handlers a new interpreter starts with
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    for target, fd in enumerate(fds):
        if fd.fd != target:
            os.dup2(fd.fd, target)
            os.close(fd.fd)
    unbuffered = bool(env.get("PYTHONUNBUFFERED"))
    sys.stdout, sys.stderr = (io.TextIOWrapper(open(fd, "wb", buffering=0 if unbuffered else -1, closefd=False),
                                               encoding="utf-8", errors=errors, write_through=unbuffered,
                                               line_buffering=fd == 2)
                              for fd, errors in ((1, "strict"), (2, "backslashreplace")))
    multiprocessing.current_process().name = "MainProcess"  # a program of its own, not the server's child
    multiprocessing.process._parent_process = None
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [module, *args]
    sys.orig_argv = [sys.executable, "-m", module, *args]
    warnings.filterwarnings("ignore", "'.*' found in sys.modules after import of package", RuntimeWarning)  # the
    # module run is also among the server's imports; `-m` would import it here for the first time
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        code = exit_status(e)
        if not isinstance(e.code, int | None):
            print(e.code, file=sys.stderr)
    except KeyboardInterrupt:  # the interpreter's own ending: a traceback, then death by SIGINT
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:
        traceback.print_exc()
        code = 1
    threading._shutdown()  # the interpreter's exit: non-daemon threads joined, then atexit
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


class Command:
    """The part of subprocess.Popen the tests use, for a fer command forked from the server."""

    def __init__(self, module: str, *args: str, cwd, env: dict | None = None, stdout=None, stderr=None,
                 text: bool = True, start_new_session: bool = False):
        self.args, self.text, self.returncode = [module, *args], text, None
        fds, self._readers, mine = [], {}, []
        for target, spec in enumerate((subprocess.DEVNULL, stdout, stderr)):
            if spec == subprocess.PIPE:
                r, w = os.pipe()
                self._readers[target] = r
                fds.append(w)
                mine.append(w)
            elif spec == subprocess.DEVNULL:
                fds.append(devnull := os.open(os.devnull, os.O_RDWR))
                mine.append(devnull)
            elif spec is None:
                fds.append(target)
            else:
                fds.append(spec if isinstance(spec, int) else spec.fileno())
        self.stdout = self._stream(1)
        self.stderr = self._stream(2)
        self._process = _fork_server().Process(
            target=_run, args=(module, list(args), str(cwd), dict(os.environ if env is None else env),
                               [_Fd(fd) for fd in fds], start_new_session), daemon=False)
        self._process.start()
        for fd in mine:
            os.close(fd)
        self.pid = self._process.pid

    def _stream(self, target: int):
        if target not in self._readers:
            return None
        return open(self._readers[target], "r" if self.text else "rb", closefd=True)  # noqa: SIM115

    def poll(self) -> int | None:
        if self.returncode is None and not self._process.is_alive():
            self.returncode = self._process.exitcode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.poll() is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def communicate(self, timeout: float | None = None):
        """Both pipes read to their end (the command and whatever it started holding them), then its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        chunks = {1: [], 2: []}
        with selectors.DefaultSelector() as selector:
            for target in (1, 2):
                if (stream := (self.stdout, self.stderr)[target - 1]) is not None and not stream.closed:
                    selector.register(stream.fileno(), selectors.EVENT_READ, target)
            while selector.get_map():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired(self.args, timeout)
                for key, _ in selector.select(left):
                    data = os.read(key.fd, 65536)
                    if data:
                        chunks[key.data].append(data)
                    else:
                        selector.unregister(key.fd)
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        outputs = []
        for target, stream in ((1, self.stdout), (2, self.stderr)):
            if stream is None:
                outputs.append(None)
                continue
            data = b"".join(chunks[target])
            stream.close()
            outputs.append(data.decode() if self.text else data)
        return tuple(outputs)

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for stream in (self.stdout, self.stderr):
            if stream is not None:
                stream.close()
        self.wait()


def run(module: str, *args: str, cwd, env: dict | None = None, timeout: float = 600
        ) -> subprocess.CompletedProcess:
    """subprocess.run(capture_output=True, text=True) for a forked fer command."""
    command = Command(module, *args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = command.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        command.kill()
        command.communicate()
        raise
    return subprocess.CompletedProcess(command.args, command.returncode, out, err)
