"""What the local servers share: a WSGI app served on loopback from a thread, and ``with`` blocks.

Kept free of the rest of ``local`` so that the Calendly sandbox, meant to be usable alone,
can lean on it without depending on the runner.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Self

from werkzeug.serving import BaseWSGIServer, make_server


class StartStop:
    """A ``with`` block starts the object and stops it on the way out, an error or not."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def serve(app: Any, thread_name: str) -> BaseWSGIServer:
    """``app`` answering on 127.0.0.1 at a free port (``server_port``), one thread a request.

    The serving thread is a daemon so that a caller that never stops it cannot hold the process.
    """
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, name=thread_name, daemon=True).start()
    return server


def stop_serving(server: BaseWSGIServer) -> None:
    server.shutdown()
    server.server_close()
