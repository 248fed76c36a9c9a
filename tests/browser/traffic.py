"""What the browser receives and when, in a Playwright page driving the app: every websocket
frame (a protobuf ``ForwardMsg``, parsed for its type) and finished HTTP request, and a script
injected before the app's that stamps websocket messages with the page's own clock. Used by
``benchmarks/bench_reruns.py`` (rerun time and bytes) and ``tests/test_browser_reruns.py``
(what a fragment rerun sends)."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

MB = 1e6
RERUN_QUIET_S = 0.6
FIRST_QUIET_S = 2.0
POLL_MS = 20
IDLE_MESSAGES = {"heartbeat_ack"}   # arrive while nothing happens: not activity
STATUS = '[data-testid="stStatusWidget"]'


def message_type(payload: bytes | str) -> str:
    """The ``ForwardMsg`` type of a websocket frame ("text" / "unparsed" otherwise)."""
    if isinstance(payload, str):
        return "text"
    try:
        msg = ForwardMsg()
        msg.ParseFromString(payload)
        return msg.WhichOneof("type") or "unknown"
    except Exception:
        return "unparsed"


#: Injected into every page before its scripts: stamps each websocket message the page sends
#: ("s") or receives ("r") with ``performance.now()`` in ``window.__wsClock``. Received
#: frames are in the same order as Playwright's ``framereceived`` events, so the i-th "r"
#: stamp belongs to the i-th parsed frame.
WS_CLOCK = """
(() => {
  const Native = window.WebSocket;
  window.__wsClock = [];
  class Clocked extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', () => window.__wsClock.push([performance.now(), 'r']));
    }
    send(data) { window.__wsClock.push([performance.now(), 's']); return super.send(data); }
  }
  window.WebSocket = Clocked;
})();
"""


class Traffic:
    """Websocket frames and finished HTTP requests of one page, stamped on arrival. Playwright's
    sync API dispatches the events during its own calls (hence the short waits in ``settle``)."""

    def __init__(self, page) -> None:
        self.page = page
        self.frames: list[tuple[float, int, str]] = []       # (time, bytes, message type)
        self.requests: list[tuple[float, object]] = []       # (time, playwright Request)
        page.add_init_script(WS_CLOCK)
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        page.on("requestfinished", self._request)

    def browser_now(self) -> float:
        """The page's ``performance.now()`` in seconds."""
        return self.page.evaluate("performance.now()") / 1000.0

    def browser_run_time(self, since_browser: float, finished_index: int) -> float | None:
        """Seconds from the first websocket message the page *sent* after ``since_browser``
        (its rerun request) to the arrival of received frame ``finished_index``, both on the
        page's own clock (:data:`WS_CLOCK`), so Playwright's dispatch delays do not count."""
        log = self.page.evaluate("window.__wsClock || []")
        sent = [t for t, kind in log if kind == "s" and t / 1000.0 >= since_browser]
        received = [t for t, kind in log if kind == "r"]
        # The log starts with the current document (a reload empties it): align from the end.
        index = finished_index - (len(self.frames) - len(received))
        if not sent or not 0 <= index < len(received):
            return None
        return max(0.0, (received[index] - sent[0]) / 1000.0)

    def _frame(self, payload) -> None:
        now = time.perf_counter()
        size = len(payload.encode() if isinstance(payload, str) else payload)
        self.frames.append((now, size, message_type(payload)))

    def _request(self, request) -> None:
        if request.url.startswith(("http:", "https:")):     # not blob: / data: (local)
            self.requests.append((time.perf_counter(), request))

    def last_finished(self, since: float) -> float | None:
        """Arrival time of the last ``script_finished`` after ``since``."""
        index = self.last_finished_index(since)
        return None if index is None else self.frames[index][0]

    def last_finished_index(self, since: float) -> int | None:
        """Index (among all received frames) of the last ``script_finished`` after ``since``."""
        found = [i for i, (t, _, kind) in enumerate(self.frames)
                 if t > since and kind == "script_finished"]
        return found[-1] if found else None

    def last_activity(self) -> float:
        frames = [t for t, _, kind in self.frames if kind not in IDLE_MESSAGES]
        return max(frames + [t for t, _ in self.requests], default=0.0)

    def received(self, start: float, end: float) -> tuple[int, int]:
        """(websocket bytes, HTTP body bytes) received in [start, end]."""
        ws = sum(size for t, size, _ in self.frames if start <= t <= end)
        http = sum(_body_size(req) for t, req in self.requests if start <= t <= end)
        return ws, http

    def breakdown(self, start: float, end: float, top: int = 4) -> str:
        """The largest contributors in [start, end]: websocket bytes per message type and the
        biggest HTTP responses (for --verbose)."""
        by_type: dict[str, int] = {}
        for t, size, kind in self.frames:
            if start <= t <= end:
                by_type[kind] = by_type.get(kind, 0) + size
        sizes = sorted(((_body_size(req), req.url.split("?")[0].split("/", 3)[-1])
                        for t, req in self.requests if start <= t <= end), reverse=True)
        ws = ", ".join(f"{k} {v / MB:.3f}" for k, v in sorted(by_type.items(),
                                                                key=lambda kv: -kv[1]))
        http = ", ".join(f"/{url} {size / MB:.3f}" for size, url in sizes[:top] if size)
        return f"ws MB: {ws or '—'}; http MB: {http or '—'}"


def _body_size(request) -> int:
    try:
        return max(0, int(request.sizes()["responseBodySize"]))
    except Exception:       # the request's data is gone (e.g. its frame was detached)
        return 0


# ---- measuring one action --------------------------------------------------------------------

@dataclass
class Sample:
    seconds: float                      # rerun request sent → script_finished, page clock
    ws_bytes: int
    http_bytes: int
    detail: str = ""                    # Traffic.breakdown, logged with --verbose
    clicked_s: float = 0.0              # from before the Playwright action (its overhead too)

    def __str__(self) -> str:
        return (f"{self.seconds:.2f} s, ws {self.ws_bytes / MB:.3f} MB, "
                f"http {self.http_bytes / MB:.3f} MB")


def settle(page, traffic: Traffic, t0: float, *, quiet: float, timeout: float,
           ready: Callable[[], bool] | None = None) -> float:
    """Wait until a run that ended after ``t0`` is followed by ``quiet`` seconds without
    traffic, the status widget is hidden and ``ready()``; returns its last ``script_finished``
    time. Raises TimeoutError after ``timeout`` seconds."""
    status = page.locator(STATUS)
    while time.perf_counter() - t0 < timeout:
        page.wait_for_timeout(POLL_MS)
        finished = traffic.last_finished(t0)
        if (finished is not None and time.perf_counter() - traffic.last_activity() >= quiet
                and not status.is_visible() and (ready is None or ready())):
            return finished
    raise TimeoutError(f"no finished, quiet run within {timeout:.0f} s")


def measure(page, traffic: Traffic, action: Callable[[], None], *, quiet: float,
            timeout: float, ready: Callable[[], bool] | None = None) -> Sample:
    b0 = traffic.browser_now()
    t0 = time.perf_counter()
    action()
    finished = settle(page, traffic, t0, quiet=quiet, timeout=timeout, ready=ready)
    end = time.perf_counter()
    ws, http = traffic.received(t0, end)
    index = traffic.last_finished_index(t0)
    in_page = None if index is None else traffic.browser_run_time(b0, index)
    return Sample(in_page if in_page is not None else finished - t0, ws, http,
                  traffic.breakdown(t0, end), clicked_s=finished - t0)


class RerunSent(AssertionError):
    """An action that should run in the browser made the app run its script."""


def measure_client(page, traffic: Traffic, action: Callable[[], None], *, quiet: float,
                   changed: Callable[[], bool]) -> Sample:
    """An action handled in the browser (a plotly figure's own slider or button): waits
    ``quiet`` seconds, then checks that the page changed (``changed()``) and that no script run
    happened (no received message other than :data:`IDLE_MESSAGES`). The sample's time is 0
    (nothing to wait for on the server); its bytes are what arrived meanwhile."""
    start = len(traffic.frames)
    t0 = time.perf_counter()
    action()
    page.wait_for_timeout(quiet * 1000)
    end = time.perf_counter()
    kinds = {kind for _, _, kind in traffic.frames[start:]} - IDLE_MESSAGES
    if kinds:
        raise RerunSent(f"the app ran its script: received {sorted(kinds)}")
    if not changed():
        raise AssertionError("the page did not change")
    ws, http = traffic.received(t0, end)
    return Sample(0.0, ws, http, traffic.breakdown(t0, end), clicked_s=0.0)


#: A plotly chart's graph div inside the element with Streamlit key ``key``.
def plotly_graph(page, key: str):
    return page.locator(f".st-key-{key} .js-plotly-plot").first


def plotly_value(graph, expression: str):
    """``expression`` evaluated with ``g`` the graph div (its ``data`` / ``layout``)."""
    return graph.evaluate(f"g => {expression}")


def click_plotly_slider(graph, fraction: float) -> None:
    """Click a plotly figure's (first) slider rail at ``fraction`` of its length."""
    rail = graph.locator(".slider-rail-touch-rect").first
    box = rail.bounding_box()
    rail.click(position={"x": max(1.0, min(box["width"] - 1.0, fraction * box["width"])),
                         "y": box["height"] / 2})


def click_plotly_button(graph, label: str) -> None:
    """Click a plotly figure's updatemenu button by its label."""
    graph.locator(".updatemenu-button").filter(has_text=label).first.click()


def choose_plotly_menu(graph, current: str, label: str) -> None:
    """Open a plotly figure's dropdown menu (its header shows ``current``) and choose the entry
    labelled exactly ``label``."""
    graph.locator(".updatemenu-header-group").filter(has_text=current).first.click()
    graph.locator(".updatemenu-dropdown-button").filter(
        has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).first.click()
