"""Which failed tracking calls are worth making again, and the one retry made on the spot.

sqlite refuses a write while another process holds the database (several runs writing one store): such a call is
retried here at once, with jittered backoff (`when_free`). A store that does not answer (`transient`,
`unreachable`) is not waited for here: the delivering client keeps its calls in the spool and goes on. MLflow's own
HTTP retries would stall training for minutes on a dead server, so they are shortened before the first request,
and dropped for what a library still asks of a store fer knows is away (`no_http_retries`).
"""

from __future__ import annotations

import os
import random
import re
import ssl
import time
import urllib.error
import urllib.request
from contextlib import AbstractContextManager

import requests
from mlflow.exceptions import MlflowException

from fer.environment import restored

BUSY_TRIES = 8

QUICK_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
              "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}

_UNANSWERED = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError,
               requests.exceptions.ChunkedEncodingError, ConnectionError, TimeoutError)


def quiet_http_retries() -> None:
    """MLflow's defaults retry a failed request 7 times with exponential backoff (about 4 minutes) and wait 120 s
    for an answer: a dead server would stall training that long. fer keeps what could not be sent instead, so
    before its first request it asks MLflow to give up sooner (the user's own settings win)."""
    for var, value in QUICK_HTTP.items():
        os.environ.setdefault(var, value)


def no_http_retries() -> AbstractContextManager[None]:
    """MLflow's requests made meanwhile give up at their first failure: for a store fer already knows is away, which
    a library's own request (the system-metrics monitor's last look at its run) would otherwise wait out (~3 s)."""
    return restored("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


def _chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def busy(exc: BaseException) -> bool:
    """sqlite refused a write because another process holds the database."""
    return any("database is locked" in str(e) for e in _chain(exc))


_MADE_MEANWHILE = re.compile(r"unique constraint|duplicate key|duplicate entry", re.IGNORECASE)


def made_meanwhile(exc: BaseException) -> bool:
    """The store refused to make a row another process made at the same moment: MLflow checks, then inserts, so two
    runs making one dataset at once clash on its key (sqlite's `UNIQUE constraint failed`, PostgreSQL's `duplicate
    key value violates unique constraint`, MySQL's `Duplicate entry`); the call made again finds the row."""
    return (isinstance(exc, MlflowException) and exc.error_code == "RESOURCE_ALREADY_EXISTS"
            or any(_MADE_MEANWHILE.search(str(e)) for e in _chain(exc)))


def transient(exc: BaseException) -> bool:
    """Whether a failed call may succeed later: the store did not answer (refused, reset, timed out, 5xx after
    MLflow's own retries) or was busy. A 4xx is a bad call, a bug: it is not retried."""
    unanswered = any(isinstance(e, _UNANSWERED) and not isinstance(e, requests.exceptions.SSLError)
                     for e in _chain(exc))  # a certificate MLflow rejects will not get better by waiting
    return unanswered or busy(exc) or (isinstance(exc, MlflowException)
                                       and exc.error_code == "TEMPORARILY_UNAVAILABLE")


def reason(exc: BaseException) -> str:
    """The root cause in a few words (`[Errno 111] Connection refused`), not urllib3's whole retry story."""
    text = str(list(_chain(exc))[-1])
    found = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    return found.group(0) if found else text.splitlines()[0][:160] if text else type(exc).__name__


def when_free(fn, *args, **kwargs):
    """`fn(*args, **kwargs)`, retried with jittered backoff while sqlite reports the database locked (several
    processes writing one store at once)."""
    for attempt in range(BUSY_TRIES):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            if attempt == BUSY_TRIES - 1 or not busy(e):
                raise
            time.sleep(random.uniform(0.5, 1.0) * min(2.0, 0.1 * 2 ** attempt))


def unreachable(uri: str, timeout: float) -> str | None:
    """Why nothing answers at an http(s) tracking URI, or None when something does (any HTTP status counts)."""
    if not uri.startswith(("http://", "https://")):
        return None
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError) as e:
        cause = getattr(e, "reason", e)
        if isinstance(cause, ssl.SSLError):
            return None  # something answers; whether to trust its certificate is MLflow's business
        return reason(cause) if isinstance(cause, BaseException) else str(cause)
    return None
