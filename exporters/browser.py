"""Headless Chromium driven over the DevTools protocol on a pipe: the browser the `web` runtime runs in.

    browser = shared_browser()                 # one per process, shut down at exit
    page = browser.open("http://127.0.0.1:41234/index.html")
    page.evaluate("1 + 1")                     # 2

Why a pipe (`--remote-debugging-pipe`) and not a debugging port: no other local
process can connect to the browser and drive it, and Chromium ends itself when
the pipe closes, so a vtk that dies, even by kill -9, takes its browser with it.
Why not Playwright: its sync API is bound to the thread that made it, and vtk
runs each runtime call in a worker thread that Ctrl-C may leave behind
(core/stoppable.py). A call in flight fails at once, with one line, when its
page crashes, its tab is closed (`Page.close`, the runtime's cancel) or the
browser exits.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

from vtk_vision.core.errors import ProviderError

__all__ = ["Browser", "Page", "PageError", "find_browser", "shared_browser", "close_browsers"]

# The flags of a quiet headless browser on a machine with no network: without the background-networking
# ones, Chromium keeps opening connections that a closed network refuses.
HEADLESS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--mute-audio", "--hide-scrollbars")
# WebGPU on the CPU (SwiftShader): a correctness check where no GPU adapter exists, never a speed figure
WEBGPU = ("--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader", "--enable-features=Vulkan",
          "--use-vulkan=swiftshader", "--use-angle=swiftshader")
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL = "install Chromium (Debian/Ubuntu: apt-get install chromium) or name it with --browser PATH or VTK_BROWSER"
CALL_LIMIT_S = 600.0  # a page that never answers fails here even where no --call-timeout watches it


class PageError(ProviderError):
    """The page threw, crashed or was closed, or the browser ended: one line saying which."""


def find_browser() -> str:
    """VTK_BROWSER (set by --browser), else the first Chromium on PATH; a ProviderError that says how to get one."""
    given = os.environ.get("VTK_BROWSER")
    if given:
        found = shutil.which(given)
        if found is None:
            raise ProviderError(f"--browser / VTK_BROWSER {given!r} is not an executable; {INSTALL}")
        return found
    for name in NAMES:
        if (found := shutil.which(name)) is not None:
            return found
    raise ProviderError(f"headless Chromium not found (looked for {', '.join(NAMES)} on PATH); {INSTALL}")


def _high_fd(fd: int) -> int:
    """The same file above 10, close-on-exec: its number can never be one that the child's dup2s overwrite
    first (1-4), which once sent Chromium's log lines into its DevTools pipe."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Browser:
    """One headless Chromium process and its DevTools pipe. Thread-safe: calls may come from any thread."""

    def __init__(self, executable: str, extra_flags: tuple[str, ...] = ()):
        self.profile = Path(tempfile.mkdtemp(prefix="vtk-chromium-"))
        to_r, self._w = map(_high_fd, os.pipe())
        self._r, from_w = map(_high_fd, os.pipe())
        args = [executable, *HEADLESS, *extra_flags, f"--user-data-dir={self.profile}", "--remote-debugging-pipe",
                "about:blank"]
        quiet = _high_fd(os.open(os.devnull, os.O_WRONLY))
        try:  # the child reads commands on fd 3 and writes replies on fd 4, Chromium's pipe convention
            self.pid = os.posix_spawn(executable, args, os.environ, file_actions=[
                (os.POSIX_SPAWN_DUP2, to_r, 3), (os.POSIX_SPAWN_DUP2, from_w, 4),
                (os.POSIX_SPAWN_DUP2, quiet, 1), (os.POSIX_SPAWN_DUP2, quiet, 2)])
        except OSError as e:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise ProviderError(f"could not start {executable}: {e.strerror}; {INSTALL}") from None
        finally:
            for fd in (to_r, from_w, quiet):
                os.close(fd)
        self.flags, self.dead, self._lock, self._next = extra_flags, None, threading.Lock(), 0
        self._waiting: dict[int, tuple[threading.Event, dict, str | None]] = {}
        self._closed_sessions: dict[str, str] = {}
        threading.Thread(target=self._read, name="vtk-chromium-pipe", daemon=True).start()
        try:
            self.version = self.send("Browser.getVersion", timeout=60)["product"]
        except PageError as e:
            self.close()
            raise ProviderError(f"{executable} did not start as a headless browser ({e}); {INSTALL}") from None

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._r, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                self._fail_all("the browser exited")
                os.close(self._r)
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                try:
                    msg = json.loads(raw)
                except ValueError:  # not the protocol: nothing waits for it
                    continue
                self._dispatch(msg)

    def _dispatch(self, msg: dict) -> None:
        if "id" in msg:
            with self._lock:
                waiter = self._waiting.pop(msg["id"], None)
            if waiter is not None:
                waiter[1].update(msg)
                waiter[0].set()
            return
        method, session = msg.get("method"), msg.get("sessionId") or msg.get("params", {}).get("sessionId")
        if method == "Inspector.targetCrashed":
            self._fail_session(session, "the page crashed")
        elif method == "Target.detachedFromTarget":
            self._fail_session(session, "the page was closed")

    def _fail_session(self, session: str | None, why: str) -> None:
        with self._lock:
            self._closed_sessions[session] = why
            failed = [k for k, (_, _, s) in self._waiting.items() if s == session]
            waiters = [self._waiting.pop(k) for k in failed]
        for event, reply, _ in waiters:
            reply["vtk_error"] = why
            event.set()

    def _fail_all(self, why: str) -> None:
        with self._lock:
            self.dead = self.dead or why
            waiters, self._waiting = list(self._waiting.values()), {}
        for event, reply, _ in waiters:
            reply["vtk_error"] = why
            event.set()

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = CALL_LIMIT_S) -> dict:
        """One DevTools command; its result, or a PageError."""
        event, reply = threading.Event(), {}
        with self._lock:
            if self.dead or session in self._closed_sessions:
                raise PageError(self.dead or self._closed_sessions[session])
            self._next += 1
            self._waiting[self._next] = (event, reply, session)
            msg = {"id": self._next, "method": method, "params": params or {}}
            if session is not None:
                msg["sessionId"] = session
            try:
                os.write(self._w, json.dumps(msg).encode() + b"\0")
            except OSError:
                self._waiting.pop(self._next)
                raise PageError("the browser exited") from None
        if not event.wait(timeout):
            raise PageError(f"the browser did not answer {method} within {timeout:g} s")
        if "vtk_error" in reply:
            raise PageError(reply["vtk_error"])
        if "error" in reply:
            raise PageError(f"{method}: {reply['error'].get('message', reply['error'])}")
        return reply.get("result", {})

    def post(self, method: str, params: dict | None = None) -> None:
        """A command whose answer nobody waits for: safe from a finalizer or a signal handler's thread."""
        with self._lock:
            if self.dead:
                return
            self._next += 1
            try:
                os.write(self._w, json.dumps({"id": self._next, "method": method, "params": params or {}}).encode()
                         + b"\0")
            except OSError:
                pass

    def open(self, url: str) -> Page:
        """A new tab at `url`, attached so that its crash fails the calls waiting on it."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session)
        for domain in ("Inspector", "Page", "Runtime"):
            self.send(f"{domain}.enable", session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        return page

    def close(self) -> None:
        """Ask Chromium to exit, then make sure it did; remove its profile folder. Safe to call twice."""
        if self.pid is None:
            return
        try:
            if not self.dead:
                self.send("Browser.close", timeout=5)
        except PageError:
            pass
        try:
            os.close(self._w)  # Chromium ends itself when its pipe closes
        except OSError:
            pass
        deadline = time.monotonic() + 5
        try:
            while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:
                    os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                    break
                time.sleep(0.05)
        except ChildProcessError:
            pass
        self.pid = None
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab of a Browser."""

    def __init__(self, browser: Browser, target: str, session: str):
        self.browser, self.target, self.session = browser, target, session

    def evaluate(self, expression: str, timeout: float = CALL_LIMIT_S):
        """The value of a JavaScript expression, promises awaited; what the page throws is a PageError."""
        got = self.browser.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                     "returnByValue": True}, self.session, timeout)
        if "exceptionDetails" in got:
            details = got["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "error")
            raise PageError(f"the page threw {text.strip().splitlines()[0][:300]}")
        return got["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0) -> None:
        """Until `expression` is true in the page (it has loaded its scripts)."""
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"Boolean({expression})", timeout):
            if time.monotonic() > deadline:
                raise PageError(f"the page was not ready ({expression}) within {timeout:g} s")
            time.sleep(0.05)

    def screenshot(self, path: Path, width: int = 900, height: int = 700) -> None:
        import base64

        self.browser.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                                 "deviceScaleFactor": 1, "mobile": False},
                          self.session)
        data = self.browser.send("Page.captureScreenshot", {"format": "png"}, self.session)["data"]
        Path(path).write_bytes(base64.b64decode(data))

    def close(self) -> None:
        """Close the tab: a call waiting on it fails at once (the `web` runtime's cancel). Safe to call twice."""
        self.browser.post("Target.closeTarget", {"targetId": self.target})


_browsers: dict[tuple[str, ...], Browser] = {}
_browsers_lock = threading.Lock()


def shared_browser(extra_flags: tuple[str, ...] = ()) -> Browser:
    """The process's browser with these flags, started on first use (or again after it died)."""
    with _browsers_lock:
        browser = _browsers.get(extra_flags)
        if browser is None or browser.dead:
            if browser is not None:
                browser.close()
            browser = _browsers[extra_flags] = Browser(find_browser(), extra_flags)
        return browser


def close_browsers() -> None:
    """Shut down every shared browser (at exit, and by tests)."""
    with _browsers_lock:
        for browser in _browsers.values():
            browser.close()
        _browsers.clear()


atexit.register(close_browsers)
