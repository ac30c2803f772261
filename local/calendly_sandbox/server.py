"""Serving a WSGI app on loopback from a daemon thread."""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

logger = logging.getLogger(__name__)


class _QuietRequestHandler(WSGIRequestHandler):
    """Keep-alive connections (benchmarks reuse them) and access lines at DEBUG instead of stderr."""

    protocol_version = "HTTP/1.1"

    def log(self, type: str, message: str, *args: Any) -> None:  # same signature as Werkzeug
        logger.debug("%s " + message, self.address_string(), *args)


class BackgroundServer:
    def __init__(self, app: Flask, host: str, port: int) -> None:
        # threaded=True: clients (and the benchmarks) issue concurrent requests.
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=_QuietRequestHandler
        )
        # A short poll interval keeps stop() (and so every test teardown) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="calendly-sandbox-http", daemon=True
        )

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
