"""A headless Chromium driven over the DevTools protocol, for the browser test of the book.

Only what the test needs: open a page, wait for its load event, evaluate JavaScript (awaiting
promises), take a screenshot, and collect console errors, uncaught exceptions, failed loads and
the URLs of all requests.
The browser is Debian's ``chromium`` package; the protocol goes over ``websocket-client``.
"""
import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import websocket

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-port=0")


def find_chromium() -> str | None:
    """Path of the Chromium binary, or None when it is not installed."""
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)


class Chromium:
    """One browser with one tab of ``width`` × ``height`` CSS pixels; use it as a context manager."""

    def __init__(self, binary: str, width: int = 1280, height: int = 800, timeout: float = 60):
        self.timeout, self.ids, self.events = timeout, itertools.count(1), []
        self.profile = tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True)
        self.process = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self.profile.name}",
                                         f"--window-size={width},{height}", "about:blank"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.socket = self.session = None
        try:
            self.socket = websocket.create_connection(self._browser_url(), timeout=timeout,
                                                      suppress_origin=True)
            target = self.send("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.send(f"{domain}.enable")
            self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                      deviceScaleFactor=1, mobile=False)
        except Exception:
            self.close()
            raise

    def _browser_url(self) -> str:
        """The browser's DevTools address, from the DevToolsActivePort file Chromium writes."""
        port_file = Path(self.profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self.process.returncode} at start")
            lines = port_file.read_text().split() if port_file.exists() else []
            if len(lines) == 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.05)
        raise TimeoutError(f"chromium did not open its DevTools port within {self.timeout} s")

    def send(self, method: str, **params) -> dict:
        """Call a DevTools method (on the tab once attached) and return its result."""
        message = {"id": next(self.ids), "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        self.socket.send(json.dumps(message))
        reply = self._receive(lambda m: m.get("id") == message["id"])
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def _receive(self, wanted) -> dict:
        """Read messages until ``wanted(message)``; events on the way are kept in ``self.events``."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = json.loads(self.socket.recv())
            if wanted(message):
                return message
            if "method" in message:
                self.events.append(message)
        raise TimeoutError(f"no answer from chromium within {self.timeout} s")

    def open(self, url: str):
        """Navigate the tab to ``url`` and wait for its load event; forget earlier events."""
        self.events.clear()
        self.send("Page.navigate", url=url)
        if not any(e["method"] == "Page.loadEventFired" for e in self.events):
            self._receive(lambda m: m.get("method") == "Page.loadEventFired")

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression in the page; promises are awaited."""
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True,
                           returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}…: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed resource loads since the last ``open``."""
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append("console: " + " ".join(str(a.get("value", a.get("description")))
                                                     for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(f"exception: {details.get('exception', {}).get('description', details.get('text'))}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")
        return found

    def requests(self) -> list[str]:
        """URLs of every request the page made since the last ``open``."""
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def screenshot(self, path: Path) -> Path:
        """A PNG of the visible part of the page."""
        data = self.send("Page.captureScreenshot", format="png")["data"]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self):
        """Ask the browser to quit (its helper processes go with it), else end it; drop the profile."""
        try:
            if self.socket:
                self.session = None
                self.send("Browser.close")
                self.socket.close()
        except (OSError, RuntimeError, TimeoutError, websocket.WebSocketException):
            self.process.terminate()
        finally:
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.profile.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
