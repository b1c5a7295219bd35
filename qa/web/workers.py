"""`qa serve --workers N`: N server processes on one port, under a small supervisor.

One process answers at most what one core of Python work allows (the GIL), so a second
process on a 2-core machine serves more questions a second (README, "One port, two
workers"). The parent binds the listening socket and forks the workers, which inherit
it and accept on it; the kernel hands each new connection to whichever worker accepts
first, so an idle worker takes the next one. The fork happens before anything with
threads is made: each worker opens its own index, model and app after it (ONNX Runtime
and tantivy threads do not survive a fork). What is read-only and safe to carry across a
fork (the model's tokenizer, jieba's dictionary, the English bridge: qa.preload) the
parent loads first, once, and the workers share its pages copy-on-write.

The parent holds no index and no model session. It announces the URL once every worker is
ready, forwards SIGTERM/SIGINT to the workers and waits for them (bounded, then kills),
and replaces a worker that dies while serving, up to MAX_DEATHS within DEATH_WINDOW
seconds. A worker that fails to start (no index, a damaged one) stops everything with
that worker's error: nothing loops on a bad config.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import select
import shutil
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from prometheus_client.multiprocess import mark_process_dead

from qa.errors import QAError
from qa.web.metrics_folders import make_metrics_folder, remove_stale_metrics_folders
from qa.web.server import BACKLOG, STOP_MARGIN_SECONDS, make_server, serve

logger = logging.getLogger(__name__)

# A worker that dies while serving is replaced; this many deaths within this many seconds
# mean something is wrong with every worker, and the supervisor stops.
MAX_DEATHS = 5
DEATH_WINDOW = 60.0
# After SIGTERM the workers get what one `qa serve` takes at most to stop (cheroot's
# 5 s for requests in progress plus the margin), and a little more; then they are killed.
STOP_SECONDS = 5.0 + STOP_MARGIN_SECONDS + 2.0
POLL_SECONDS = 0.2

# What a worker builds after the fork: the WSGI app, and what to call when it stops.
OpenApp = Callable[[], tuple[Any, Callable[[], None]]]
# What the parent loads once before the first fork, for the workers to share; returns
# what it loaded (qa.preload.load_before_fork).
LoadShared = Callable[[], list[str]]


class WorkersFailed(QAError):
    """The workers could not start, or kept dying."""


@dataclass
class Worker:
    number: int
    pid: int
    reports: int  # read end of the pipe the worker writes "ready" or its error to
    lifeline: int  # write end of a pipe the worker watches: EOF means the parent is gone
    ready: bool = False
    error: str = ""
    buffer: bytes = b""


@dataclass
class Supervisor:
    count: int
    host: str
    sock: socket.socket
    open_app: OpenApp
    threads: int
    settings: Any
    announce: Callable[[str], None]
    # "socket": the workers accept on the parent's socket; "reuse_port": each binds its
    # own with SO_REUSEPORT and the kernel spreads connections by a hash of the client's
    # address (the parent's socket only holds the port). Measured: README.
    share: str = "socket"
    workers: dict[int, Worker] = field(default_factory=dict)  # by pid
    deaths: list[float] = field(default_factory=list)
    stop_signal: int = 0
    announced: bool = False
    metrics_dir: str = ""  # the workers' shared metrics files (qa.web.metrics)
    load_shared: LoadShared | None = None

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def run(self) -> int:
        """Start the workers, supervise them until a signal, stop them; the exit code."""
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        for stale in remove_stale_metrics_folders():
            logger.info("removed %s, left by a supervisor that was killed", stale)
        self.metrics_dir = str(make_metrics_folder())
        try:
            self._load_shared()
            for number in range(1, self.count + 1):
                self._start(number)
            while not self.stop_signal:
                self._read_reports(POLL_SECONDS)
                self._reap()
            logger.info("stopping %d workers (signal %d)", len(self.workers), self.stop_signal)
            return 0
        finally:
            self._stop_all()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stop_signal = signum

    def _load_shared(self) -> None:
        if self.load_shared is None:
            return
        began = time.perf_counter()
        try:
            loaded = self.load_shared()
        except Exception as exc:  # noqa: BLE001 - only a saving: each worker loads its own
            logger.warning("could not load before forking (%s: %s); each worker loads its own",
                           type(exc).__name__, exc)
            return
        if loaded:
            logger.info("loaded once for the workers to share: %s (%.1f s)",
                        ", ".join(loaded), time.perf_counter() - began)

    def _start(self, number: int) -> None:
        if threading.active_count() > 1:  # never fork with Python threads running
            raise WorkersFailed("cannot start a worker: the supervisor has threads running")
        reports_r, reports_w = os.pipe()
        lifeline_r, lifeline_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        # The collector in a worker then never visits (and writes to) the objects made
        # before the fork, such as the shared dictionaries' (measured: README).
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the parent's code
            try:
                inherited = [fd for w in self.workers.values()
                             for fd in (w.reports, w.lifeline)]
                for fd in (*inherited, reports_r, lifeline_w):
                    os.close(fd)
                run_worker(number, self.host, self.sock, reports_w, lifeline_r,
                           self.open_app, self.threads, self.settings, self.share,
                           self.metrics_dir)
            finally:
                os._exit(1)
        os.close(reports_w)
        os.close(lifeline_r)
        os.set_blocking(reports_r, False)
        self.workers[pid] = Worker(number, pid, reports_r, lifeline_w)
        logger.info("worker %d started (pid %d)", number, pid)

    def _read_reports(self, timeout: float) -> None:
        fds = {w.reports: w for w in self.workers.values()}
        try:
            readable, _, _ = select.select(list(fds), [], [], timeout)
        except InterruptedError:  # pragma: no cover (PEP 475 retries)
            return
        for fd in readable:
            self._read(fds[fd])

    def _read(self, worker: Worker) -> None:
        try:
            while chunk := os.read(worker.reports, 65536):
                worker.buffer += chunk
        except BlockingIOError:
            pass
        *lines, worker.buffer = worker.buffer.split(b"\n")
        for line in lines:
            message = json.loads(line)
            if message.get("ready"):
                worker.ready = True
                logger.info("worker %d ready (pid %d)", worker.number, worker.pid)
            else:
                worker.error = message.get("error", "")
        if not self.announced and len(self.workers) == self.count and all(
                w.ready for w in self.workers.values()):
            self.announced = True
            logger.info("serving on %s with %d workers", self.url, self.count)
            self.announce(self.url)

    def _reap(self) -> None:
        while self.workers:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            self._read(worker)
            os.close(worker.reports)
            os.close(worker.lifeline)
            # Its counts stay in the sum; its share of the in-flight gauge goes.
            mark_process_dead(pid, self.metrics_dir)
            how = describe_exit(status)
            if not worker.ready:
                # Starting failed (no index, a damaged one, a bad setting): every worker
                # would fail alike, so stop with its reason rather than try again.
                raise WorkersFailed(worker.error or f"worker {worker.number} {how} while "
                                    "starting; run `qa serve` without --workers to see why")
            now = time.monotonic()
            self.deaths = [t for t in self.deaths if now - t < DEATH_WINDOW] + [now]
            if len(self.deaths) > MAX_DEATHS:
                raise WorkersFailed(f"workers keep dying ({len(self.deaths)} within "
                                    f"{DEATH_WINDOW:.0f} s, the last: worker {worker.number} "
                                    f"{how}); stopped")
            logger.warning("worker %d (pid %d) %s; starting another", worker.number, pid, how)
            self._start(worker.number)

    def _stop_all(self) -> None:
        """SIGTERM every worker, wait for them (bounded), kill what is left."""
        self.sock.close()  # the workers hold their own copies
        for pid in self.workers:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while self.workers and time.monotonic() < deadline:
            self._collect(time.monotonic() < deadline)
        for pid, worker in list(self.workers.items()):
            logger.warning("worker %d (pid %d) did not stop within %.0f s; killing it",
                           worker.number, pid, STOP_SECONDS)
            _signal(pid, signal.SIGKILL)
        while self.workers:
            self._collect(True)

    def _collect(self, wait: bool) -> None:
        for pid in list(self.workers):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                worker = self.workers.pop(pid)
                os.close(worker.reports)
                os.close(worker.lifeline)
        if self.workers and wait:
            time.sleep(0.05)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def describe_exit(status: int) -> str:
    """'exited with code 1' or 'was killed by signal 9 (SIGKILL)'."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return f"was killed by signal {number} ({signal.Signals(number).name})"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"


def listening_socket(host: str, port: int, share: str = "socket") -> socket.socket:
    """The bound, listening socket the workers share (with share="reuse_port": a bound
    socket that holds the port, not listening). Raises OSError."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        if port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if share == "reuse_port":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        if share != "reuse_port":
            sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def run_worker(number: int, host: str, sock: socket.socket, reports: int, lifeline: int,
               open_app: OpenApp, threads: int, settings: Any, share: str = "socket",
               metrics_dir: str = "") -> NoReturn:
    """The worker process after the fork: open the app, report, serve. Never returns."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)  # nothing to clean up while loading
    _tag_log_lines(number)

    def report(message: dict[str, Any]) -> None:
        os.write(reports, (json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8"))

    try:
        if metrics_dir:
            from qa.web.metrics import share_between_processes

            share_between_processes(metrics_dir)
        app, close = open_app()
        if share == "reuse_port":
            server = make_server(app, host, sock.getsockname()[1], threads, settings,
                                 reuse_port=True)
        else:
            server = make_server(app, host, 0, threads, settings, sock=sock)
    except QAError as exc:
        report({"error": str(exc)})
        os._exit(1)
    except BaseException as exc:  # noqa: BLE001 - told to the parent, which stops
        traceback.print_exc()
        report({"error": f"worker {number} failed to start: {type(exc).__name__}: {exc}"})
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(lifeline,), name="lifeline",
                     daemon=True).start()
    # serve() installs its own handlers and puts back these when it stops: a second
    # signal (Ctrl-C reaches the whole process group, and the parent forwards it) is
    # then ignored instead of cutting the stop short.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    serve(server, announce=lambda url: report({"ready": True}), close=close)


def _watch_parent(lifeline: int) -> None:
    """Stop this worker when the parent is gone (the pipe's write end closes)."""
    while os.read(lifeline, 1):
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def _tag_log_lines(number: int) -> None:
    """Say which worker wrote each log line."""
    for handler in logging.getLogger().handlers:
        fmt = handler.formatter._fmt if handler.formatter else "%(message)s"
        handler.setFormatter(logging.Formatter(
            fmt.replace("%(name)s", f"worker {number} pid %(process)d %(name)s", 1)))
