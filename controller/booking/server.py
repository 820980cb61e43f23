"""The booking API served by uvicorn on a thread of the controller process: a runnable.

:class:`BookingServer` binds its socket itself in :meth:`~BookingServer.start` (so a port in use
is a one-line error naming ``--booking-listen``, and port 0 tells the bound port at once), runs
``uvicorn.Server`` over it on a daemon thread, and returns once uvicorn serves. It needs
leadership: only the leader books. :meth:`~BookingServer.stop` asks uvicorn to exit and waits.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from slices import errors
from slices.addresses import split_address

log = logging.getLogger(__name__)

#: How long :meth:`BookingServer.start` waits for uvicorn to serve.
START_TIMEOUT_S = 10.0
#: How long :meth:`BookingServer.stop` lets requests in flight finish.
GRACE_S = 5.0


def _host_port(listen: str) -> tuple[str, int]:
    try:
        return split_address(listen)
    except errors.InvalidSpec:
        raise errors.InvalidSpec(f"--booking-listen {listen!r}: expected HOST:PORT") from None


class BookingServer:
    """The booking API on ``listen`` (``HOST:PORT``; port 0 picks a free one), HTTPS when given
    a certificate and its key. ``log_level``: uvicorn's (``warning`` keeps it quiet; no access
    log either way)."""

    name = "booking-api"
    needs_leadership = True

    def __init__(
        self,
        app: ASGIApp,
        listen: str,
        *,
        certfile: Path | None = None,
        keyfile: Path | None = None,
        log_level: str = "warning",
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        if (certfile is None) != (keyfile is None):
            raise errors.InvalidSpec("the booking API's TLS needs both a certificate and its key")
        self.app = app
        self.listen = listen
        self.host, self.port = _host_port(listen)
        self.certfile = certfile
        self.keyfile = keyfile
        self.log_level = log_level
        self.start_timeout_s = start_timeout_s
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._failure: BaseException | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.certfile is not None else "http"

    @property
    def address(self) -> str:
        """The bound ``HOST:PORT`` (``[v6]:PORT``) once started."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}"

    @property
    def endpoints(self) -> Mapping[str, str]:
        return {"booking": self.url}

    def _bind(self) -> socket.socket:
        try:
            family, kind, proto, _, where = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[
                0
            ]
        except OSError as exc:
            raise errors.Unavailable(f"--booking-listen {self.listen}: cannot resolve {self.host!r}") from exc
        sock = socket.socket(family, kind, proto)
        try:
            # As uvicorn binds: SO_REUSEADDR (a restart need not wait out TIME_WAIT), no SO_REUSEPORT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(where)
            sock.listen(2048)
        except OSError as exc:
            sock.close()
            why = (
                "address already in use"
                if exc.errno == errno.EADDRINUSE
                else (exc.strerror or str(exc)).lower()
            )
            raise errors.Unavailable(f"--booking-listen {self.listen}: {why}") from exc
        sock.set_inheritable(True)
        return sock

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: already started")
        sock = self._bind()
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_config=None,  # the process's logging stays as the process set it up
            log_level=self.log_level,
            access_log=False,
            lifespan="off",
            ssl_certfile=self.certfile,
            ssl_keyfile=self.keyfile,
            timeout_graceful_shutdown=int(GRACE_S),
            server_header=False,
        )
        try:
            config.load()  # here, so a bad certificate or key is this thread's error
        except Exception as exc:
            sock.close()
            raise errors.Unavailable(f"--booking-tls-cert/--booking-tls-key: {exc}") from exc
        server = uvicorn.Server(config)
        self._server, self._socket, self._failure = server, sock, None

        def serve() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # SystemExit is how uvicorn says its startup failed
                self._failure = exc

        self._thread = threading.Thread(target=serve, name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                why = f"uvicorn stopped: {self._failure!r}" if not self._thread.is_alive() else "timed out"
                self.stop()
                raise errors.Unavailable(
                    f"--booking-listen {self.listen}: the booking API did not start ({why})"
                )
            time.sleep(0.01)
        log.info("booking API serving on %s", self.url)

    def stop(self) -> None:
        server, thread, sock = self._server, self._thread, self._socket
        self._server = self._thread = self._socket = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=GRACE_S + 5.0)
            if thread.is_alive():
                log.warning("booking API: uvicorn did not stop within %.0f s", GRACE_S + 5.0)
        if sock is not None:
            sock.close()
