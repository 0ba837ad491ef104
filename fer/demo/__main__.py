"""`python -m fer.demo (run_id=… | model=models:/…) [port=7860]`: the demo page of a trained run on this machine.

The standard library's threading HTTP server answers three paths: `/` the page, `/info` which run and model it
shows, and `POST /analyze` a photo's or a short video's faces (fer/demo/__init__.py); one model call at a time.
"""

from __future__ import annotations

import errno
import json
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files

from fer.cli import entry_point
from fer.console import say
from fer.data.photos import check_detection
from fer.demo import analyse, analyse_video, explanation_method, is_video
from fer.errors import ConfigError, DataError, FerError
from fer.runs.restore import restore_model, run_to_restore


class Demo(ThreadingHTTPServer):
    """The server, bound before the model is restored (a port in use is said at once); `show` gives it the model."""

    daemon_threads = True

    def __init__(self, address, detect: str, margin: float, max_bytes: int):
        super().__init__(address, DemoHandler)
        self.detect, self.margin, self.max_bytes = detect, margin, max_bytes
        self.page = files("fer.demo").joinpath("page.html").read_bytes()
        self.lock = threading.Lock()  # one request at a time through the model (its hooks are not thread-safe)

    def show(self, module, info: dict) -> None:
        self.module, self.info = module, info


class DemoHandler(BaseHTTPRequestHandler):
    server: Demo

    def send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, data: dict) -> None:
        self.send(status, json.dumps(data).encode(), "application/json")

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path in ("/", "/index.html"):
            self.send(200, self.server.page, "text/html; charset=utf-8")
        elif self.path == "/info":
            self.send_json(200, self.server.info)
        else:
            self.send_json(404, {"error": f"no {self.path} here: the page is /"})

    def do_POST(self):  # noqa: N802
        if self.path != "/analyze":
            return self.send_json(404, {"error": f"no {self.path} here: photos go to POST /analyze"})
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.server.max_bytes:
            self.discard(length)
            return self.send_json(413, {"error": f"the file has {length / 2**20:.1f} MB, more than the demo takes "
                                                 f"({self.server.max_bytes / 2**20:.0f} MB: max_upload_mb=)"})
        upload = self.rfile.read(length)
        try:
            with self.server.lock:
                how = analyse_video if is_video(upload) else analyse
                result = how(self.server.module, upload, self.server.detect, self.server.margin)
        except DataError as e:
            return self.send_json(400, {"error": e.problem})
        self.send_json(200, result)

    def discard(self, length: int) -> None:
        """Reads a refused upload to its end, a megabyte at a time: a server that answers while the client is still
        sending closes on unread data, and the client (a browser's fetch too) sees a reset connection, not why."""
        while length > 0 and (chunk := self.rfile.read(min(length, 2**20))):
            length -= len(chunk)

    def log_message(self, format, *args):  # a line per request would bury fer's own lines
        pass


def run_info(client, run_id: str, model_uri: str | None, module) -> dict:
    """What the page says it shows: the run, its model and test accuracy, and how faces are explained."""
    run = client.get_run(run_id)
    test_acc = run.data.metrics.get("test_acc")
    return {"run_id": run_id, "run_name": run.info.run_name, "model": model_uri or f"runs:/{run_id}",
            "architecture": run.data.params.get("model.name", ""), "test_acc": test_acc,
            "data": run.data.params.get("data.name", ""), "classes": list(module.classes),
            "explained_by": explanation_method(module)[2]}


@entry_point("demo", takes_model_uri=True)
def main(cfg) -> None:
    check_detection(cfg.detect, cfg.margin)
    if not isinstance(cfg.port, int) or not 0 <= cfg.port <= 65535:
        raise ConfigError("port", "a port number, 0 to 65535 (0: any free port)", cfg.port)
    if isinstance(cfg.max_upload_mb, bool) or not isinstance(cfg.max_upload_mb, int | float) or cfg.max_upload_mb <= 0:
        raise ConfigError("max_upload_mb", "a size in megabytes, more than 0", cfg.max_upload_mb)
    run_id = run_to_restore(cfg)
    try:
        demo = Demo((cfg.host, cfg.port), cfg.detect, cfg.margin, int(cfg.max_upload_mb * 2**20))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise FerError(f"port {cfg.port} on {cfg.host} is in use: give port=<another> (port=0 picks a free "
                           "one)") from None
        raise FerError(f"cannot serve on {cfg.host}:{cfg.port}: {e.strerror}") from None
    try:
        client, module = restore_model(cfg, run_id)
        demo.show(module, run_info(client, run_id, cfg.get("model_uri"), module))
    except BaseException:
        demo.server_close()
        raise
    info = demo.info
    host, port = demo.server_address[:2]
    accuracy = f", test_acc {info['test_acc']:.4f}" if info["test_acc"] is not None else ""
    say(f"demo of run {run_id} ({info['run_name']}{accuracy}) at http://{host}:{port}/ (Ctrl-C stops it)")
    for sig in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C also where the parent ignored it; a service manager's
        signal.signal(sig, signal.default_int_handler)  # stop ends it the same way
    try:
        demo.serve_forever()
    except KeyboardInterrupt:
        say("demo stopped")
    finally:
        demo.server_close()


if __name__ == "__main__":
    main()
