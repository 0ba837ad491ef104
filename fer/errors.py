"""Errors a user can act on, how a command ends because of them, and the guard that prints them as one line."""

from __future__ import annotations

import atexit
import errno
import functools
import gc
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from fer.console import quiet_libraries, say

F = TypeVar("F", bound=Callable)

EXIT_BAD_INPUT = 2
# Exit codes of a process ended by SIGINT / SIGTERM (or a cluster's preemption signal, SIGUSR2), as a shell
# reports them.
EXIT_CODES = {"Ctrl-C": 130, "SIGTERM": 143, "preemption": 140}


class FerError(Exception):
    """Bad input or configuration: the message alone tells the user what to fix."""


class DataError(FerError):
    """A data file that is missing, malformed or holds values out of range."""

    def __init__(self, path, problem: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.problem = path, line, problem


class ConfigError(FerError):
    """A config key whose value cannot be used."""

    def __init__(self, key: str, expected: str, got):
        super().__init__(f"config key '{key}': expected {expected}, got {got!r}")
        self.key = key


def unusable_folder(e: OSError) -> FerError | None:
    """A folder fer must write to (outputs, the tracking store, the spool) that refuses it, as a FerError."""
    if e.filename is None or e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT):
        return None
    path = Path(os.fsdecode(e.filename)).absolute()
    remedy = ("free space there" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "run from a folder you can write")
    return FerError(f"cannot write {path} ({e.strerror}): fer writes its outputs, checkpoints and local tracking "
                    f"store where the command starts; {remedy}, or point hydra.run.dir, tracking.uri and "
                    "tracking.artifact_root elsewhere")


def output_path(path: str | Path, key: str, folder: bool = False) -> Path:
    """Where a command will write `key`'s file (its folder, with `folder`), made and checked before the work
    that fills it: a path that cannot be written is one line before minutes of work, not a traceback after."""
    path = Path(path)
    folder_path = path if folder else path.parent
    if not folder and path.is_dir():
        raise ConfigError(key, "a file to write, not a folder that exists", str(path))
    try:
        folder_path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        in_the_way = next(p for p in (folder_path, *folder_path.parents) if p.exists() and not p.is_dir())
        raise ConfigError(key, f"a path through folders ({in_the_way} is a file)", str(path)) from None
    except OSError as e:
        raise (unusable_folder(e) or ConfigError(key, f"a place fer can write (making {e.filename}: {e.strerror})",
                                                 str(path))) from None
    if not os.access(folder_path, os.W_OK):  # said like any folder fer cannot write, naming what it would write
        code = errno.EROFS if os.statvfs(folder_path).f_flag & os.ST_RDONLY else errno.EACCES
        raise unusable_folder(OSError(code, os.strerror(code), str(path)))
    return path


@functools.cache
def collect_only_the_commands_own_objects() -> None:
    """Once per process, as a command starts, the objects its imports made (torch, Lightning, MLflow: over half a
    million, which a process forked from one that imported them shares) are frozen out of the garbage collector, so
    the full collections a run triggers walk only what the run made (a forked run: 4.8 → 4.3 CPU-s); and at exit,
    after every other exit handler, so are the rest, which the interpreter's closing collections would otherwise walk
    for ~2 s after a command's last line (cyclic garbage left then is not finalized; files are closed by then)."""
    gc.freeze()
    atexit.register(gc.freeze)


def guarded(fn: F, say_stops: bool = False) -> F:
    """Print a FerError (or a folder fer cannot write) as `fer: error: …` and exit 2 instead of a traceback.
    Every command runs through here, so here the libraries' own chatter is quieted too, and the garbage collector
    kept off the libraries' objects and off the command's exit. With `say_stops`, Ctrl-C
    (or a stop raised as KeyboardInterrupt) that the command does not handle itself ends in one line and the
    signal's exit code; training leaves it to the run's own ending, which records it."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        collect_only_the_commands_own_objects()
        quiet_libraries()
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt as stop:
            if not say_stops:
                raise
            cause = getattr(stop, "cause", "Ctrl-C")
            say(f"stopped by {cause}", err=True)
            sys.exit(EXIT_CODES.get(cause, EXIT_CODES["Ctrl-C"]))
        except (FerError, OSError) as e:
            error = e if isinstance(e, FerError) else unusable_folder(e)
            if error is None:
                raise
            say(f"error: {error}", err=True)
            sys.exit(EXIT_BAD_INPUT)

    return wrapper  # type: ignore[return-value]
