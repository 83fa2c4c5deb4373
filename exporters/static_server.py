"""The loopback web server the `web` runtime's page is loaded from: only the files registered with it.

    server = shared_server()
    base = server.mount([Path("model.web/index.html"), ...])   # "/3f9c.../": an unguessable prefix
    url = server.put(array.tobytes())                         # one-shot: gone once fetched

127.0.0.1 on an ephemeral port, never a folder listing and never a file that
was not registered (a link inside a handed folder cannot make it serve
/etc/passwd). Every answer carries COOP/COEP headers, so the page is
cross-origin isolated: that is what lets onnxruntime-web use WASM threads
(SharedArrayBuffer) and gives `performance.now()` its 5 us resolution instead
of 100 us.
"""

from __future__ import annotations

import secrets
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["StaticServer", "shared_server", "ISOLATION_HEADERS"]

ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp",
                     "Cross-Origin-Resource-Policy": "same-origin"}
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
         ".wasm": "application/wasm", ".json": "application/json", ".png": "image/png", ".css": "text/css",
         ".txt": "text/plain; charset=utf-8"}


class StaticServer:
    """A ThreadingHTTPServer on 127.0.0.1 in a daemon thread, answering GET/HEAD for registered routes only."""

    def __init__(self):
        self._routes: dict[str, Path | bytes] = {}
        self._once: set[str] = set()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802  (http.server's naming)
                server._answer(self, body=True)

            def do_HEAD(self):  # noqa: N802
                server._answer(self, body=False)

            def log_message(self, *args):  # the page's fetches are not the user's business
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, name="vtk-web-server", daemon=True).start()

    def _answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        route = handler.path.split("?", 1)[0]
        with self._lock:
            what = self._routes.get(route)
            if what is not None and route in self._once and body:
                del self._routes[route]
                self._once.discard(route)
        if what is None:
            handler.send_error(404)
            return
        size = len(what) if isinstance(what, bytes) else what.stat().st_size
        handler.send_response(200)
        for k, v in {**ISOLATION_HEADERS, "Content-Type": TYPES.get(Path(route).suffix, "application/octet-stream"),
                     "Content-Length": str(size), "Cache-Control": "no-store",
                     "X-Content-Type-Options": "nosniff"}.items():
            handler.send_header(k, v)
        handler.end_headers()
        if not body:
            return
        try:
            if isinstance(what, bytes):
                handler.wfile.write(what)
            else:
                with open(what, "rb") as f:
                    shutil.copyfileobj(f, handler.wfile)
        except (BrokenPipeError, ConnectionResetError):  # a closed tab stops reading: nothing to report
            pass

    def mount(self, files: dict[str, Path]) -> str:
        """Serve each file at <prefix>/<relative name>; returns the prefix URL (unguessable, ends with /)."""
        prefix = f"/{secrets.token_hex(8)}/"
        with self._lock:
            for name, path in files.items():
                self._routes[prefix + name] = Path(path)
        return self.origin + prefix

    def unmount(self, prefix_url: str) -> None:
        prefix = prefix_url.removeprefix(self.origin)
        with self._lock:
            for route in [r for r in self._routes if r.startswith(prefix)]:
                del self._routes[route]
                self._once.discard(route)

    def put(self, data: bytes) -> str:
        """A URL the page fetches `data` from, once: inputs pass to the page this way, not through DevTools."""
        route = f"/blob/{secrets.token_hex(8)}.bin"
        with self._lock:
            self._routes[route] = data
            self._once.add(route)
        return self.origin + route

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


_server: StaticServer | None = None
_server_lock = threading.Lock()


def shared_server() -> StaticServer:
    """The process's server, started on first use; its thread is a daemon and ends with the process."""
    global _server
    with _server_lock:
        if _server is None:
            _server = StaticServer()
        return _server
