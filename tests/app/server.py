"""Serve a Flask app on a real local port for the duration of a test."""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from werkzeug.serving import make_server


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
