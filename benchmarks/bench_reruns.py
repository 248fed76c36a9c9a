"""Rerun benchmark (issue 18): how long a widget change that needs no new model computation
takes, and how many bytes the browser receives for it, measured in a real browser.

    python benchmarks/bench_reruns.py [--size 512] [--pages sr,analyze] [--repeats 3] [--tiny]
                                      [--enhance] [--timeout 300] [--json OUT] [--verbose]

Starts the real app (``streamlit run serve.py``, tests/browser/harness.py) with a temporary
database and a copy of the shipped models in ``weights/`` (``--tiny``: the tests' tiny models,
much faster), and drives Debian's chromium with Playwright. Each page is measured in its own
browser session (log in as "reader", open the page):

* **First run**: uploading a synthetic ``--size`` px brain PNG (tests/app_env.py) until the
  page's result is shown (Super-resolution: the "PSNR / SSIM" heading; Analyze: "Prediction"
  and a calibrated probability), the last ``script_finished`` message is followed by 2 s of
  quiet and Streamlit's "Running…" status widget is hidden. An untimed warm-up upload of
  another scan (half the size) comes first, so the models are loaded, as for every scan after
  a server's first. Super-resolution simulates ×4 with the page's default methods (bicubic,
  RRDB (PSNR), ESRGAN), so its outputs are ``size``² pixels. ``--enhance`` adds a case
  "sr-enhance": after the upload (not timed) the "Mode" control is switched to Enhance (×4,
  ``size`` → ``4·size``² outputs); that computation is its first run.
* **Reruns**: Super-resolution: the selectboxes "Compare the low-res input with" (tab "Slider
  comparison"), "Difference of" (tab "Difference map"), "Download", "Rate the output of", and
  the "Interactive viewer" toggle (off and on reported separately). Analyze: the Grad-CAM
  picture's own "Overlay opacity" slider (a click on its rail at 90 % / 20 %), "Grad-CAM box"
  button and menu of maps (every class by Grad-CAM and Grad-CAM++: its last entry and back to
  the predicted class's Grad-CAM), the tumour-outline picture's "Grad-CAM box" button (with a
  segmentation model), and the "Interactive viewer" section folded and unfolded (close and open
  reported separately). The plotly controls and the section run in the browser: such a step
  passes only if the page changed and no script run happened within 600 ms (no message but
  heartbeats received); its time is reported as 0. Each is repeated ``--repeats`` times,
  alternating between two values so each change is real; opening a selectbox's list or
  clicking a tab happens before the timed window. A widget that is not on the page is
  reported as "not found".

Timing: the browser's websocket frames (protobuf ``ForwardMsg``\\ s, parsed to know their type)
and finished HTTP requests (``st.image`` pictures and downloads are ``/media/…`` URLs) are
recorded in this process. ``t0`` is taken just before the Playwright action; the rerun is over
when a ``script_finished`` frame arrived after ``t0``, 600 ms passed without a frame or request
(``heartbeat_ack`` frames do not count) and the status widget is hidden. Rerun time is taken
on the page's own clock (a script injected before the app's, ``WS_CLOCK``, stamps every
websocket message sent and received with ``performance.now()``): from the first message the
page sends after the action (its rerun request) to the arrival of the last ``script_finished``.
So it is what the user waits for after the click, without Playwright's own overhead (which
``clicked_s`` in the JSON includes). Bytes =
websocket payloads (Streamlit does not compress its websocket by default) + HTTP response
bodies as transferred, both received in [``t0``, end]. The table reports medians; a rerun
passes when its time is ≤ 5 % of the page's first run and it receives ≤ 2 MB (10⁶ bytes).
Progress goes to stderr; ``--verbose`` also logs what each run received (websocket bytes per
message type, the largest HTTP responses).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]     # core; app_env and browser.harness

from app_env import PASSWORDS, brain_png_bytes  # noqa: E402
from browser.harness import (UPLOADER, app_server, browser_page, login,  # noqa: E402
                             open_page)
from browser.traffic import (FIRST_QUIET_S, MB, RERUN_QUIET_S, STATUS,  # noqa: E402
                             Sample, Traffic, choose_plotly_menu, click_plotly_button,
                             click_plotly_slider, measure, measure_client, plotly_graph,
                             plotly_value)

TIME_TARGET = 0.05            # rerun time / first-run time
BYTES_TARGET_MB = 2.0
SELECTBOX = '[data-testid="stSelectbox"]'
CHECKBOX = '[data-testid="stCheckbox"]'
SLIDER = '[data-testid="stSlider"]'
BUTTON_GROUP = '[data-testid="stButtonGroup"]'


class NotFound(Exception):
    """A widget the benchmark drives is not on the page (e.g. the layout changed)."""


# ---- the widgets -------------------------------------------------------------------------------

@dataclass
class Step:
    """One timed change: ``before`` (untimed, e.g. open a list) then ``act``."""
    act: Callable[[], None]
    before: Callable[[], None] | None = None
    name: str = ""                      # set: the steps are reported separately (toggles)
    #: set for a control that runs in the browser (a plotly figure's own slider or button):
    #: the step is measured with ``measure_client`` (no script run allowed) and must make
    #: ``check()`` true
    check: Callable[[], bool] | None = None


@dataclass
class Interaction:
    label: str
    setup: Callable[[object], list[Step]]   # page -> the two alternating steps; NotFound
    warm_up: bool = False                   # run each step once, untimed, first
    each_step_per_repeat: bool = False      # a repeat runs both steps (toggles: off and on)


def _one(locator, what: str):
    if not locator.count():
        raise NotFound(what)
    return locator.first


def _click_tab(page, tab: str | None) -> None:
    if tab:
        _one(page.get_by_role("tab", name=tab, exact=True), f"tab {tab!r}").click()
        page.wait_for_timeout(300)


def selectbox(label: str, *, tab: str | None = None, warm_up: bool = False) -> Interaction:
    """Switch between the current option and the last other one; the list is opened (and
    ``tab`` clicked) before the timed window, the option click is timed."""
    def setup(page) -> list[Step]:
        _click_tab(page, tab)
        combo = page.get_by_role("combobox", name=label, exact=True)
        box = _one(page.locator(SELECTBOX).filter(has=combo), f"selectbox {label!r}")

        def open_list() -> None:
            _click_tab(page, tab)
            box.scroll_into_view_if_needed()
            box.get_by_role("button", name="Open").click()
            page.get_by_role("option").first.wait_for()

        current = box.get_by_role("combobox").input_value()
        open_list()
        options = [t.strip() for t in page.get_by_role("option").all_inner_texts()]
        page.keyboard.press("Escape")
        page.wait_for_timeout(300)
        others = [o for o in options if o != current]
        if not others:
            raise NotFound(f"a second option in {label!r} (options: {options})")

        def pick(option: str) -> Callable[[], None]:
            return lambda: page.get_by_role("option", name=option, exact=True).first.click()

        return [Step(pick(others[-1]), before=open_list), Step(pick(current), before=open_list)]
    return Interaction(f"selectbox {label!r}", setup, warm_up=warm_up)


def toggle(label: str) -> Interaction:
    """Click the switch's label; each direction is reported on its own row."""
    def setup(page) -> list[Step]:
        box = _one(page.locator(CHECKBOX).filter(has_text=label), f"toggle {label!r}")
        on = box.locator("input").first.is_checked()

        def click() -> None:
            box.locator("label").first.click()

        def before() -> None:
            box.scroll_into_view_if_needed()

        first, second = ("off", "on") if on else ("on", "off")
        return [Step(click, before, name=first), Step(click, before, name=second)]
    return Interaction(f"toggle {label!r}", setup, each_step_per_repeat=True)


def slider(label: str) -> Interaction:
    """One step right, one step left with the keyboard on the focused thumb."""
    def setup(page) -> list[Step]:
        thumb = _one(page.locator(SLIDER).filter(has_text=label).get_by_role("slider"),
                     f"slider {label!r}")

        def focus() -> None:
            thumb.scroll_into_view_if_needed()
            thumb.focus()

        def press(key: str) -> Callable[[], None]:
            return lambda: page.keyboard.press(key)

        return [Step(press("ArrowRight"), focus), Step(press("ArrowLeft"), focus)]
    return Interaction(f"slider {label!r}", setup)


def plotly_slider(key: str, label: str, expression: str) -> Interaction:
    """A plotly figure's own slider (the chart with Streamlit key ``key``): click its rail at
    90 %, then at 20 %; ``expression`` (of the graph div ``g``) must follow."""
    def setup(page) -> list[Step]:
        graph = _one(plotly_graph(page, key), f"plotly chart {key!r}")
        _one(graph.locator(".slider-rail-touch-rect"), f"slider of chart {key!r}")

        def before() -> None:
            graph.scroll_into_view_if_needed()

        def go_to(fraction: float, reached: Callable[[float], bool]) -> Step:
            return Step(lambda: click_plotly_slider(graph, fraction), before,
                        check=lambda: reached(plotly_value(graph, expression)))
        return [go_to(0.9, lambda v: v >= 0.8), go_to(0.2, lambda v: v <= 0.3)]
    return Interaction(f"plotly slider {label!r} of {key} (in the browser)", setup)


def plotly_switch(key: str, label: str, expression: str) -> Interaction:
    """A plotly figure's own on/off button; ``expression`` is its state (starts false)."""
    def setup(page) -> list[Step]:
        graph = _one(plotly_graph(page, key), f"plotly chart {key!r}")
        _one(graph.locator(".updatemenu-button").filter(has_text=label),
             f"button {label!r} of chart {key!r}")

        def before() -> None:
            graph.scroll_into_view_if_needed()

        def click() -> None:
            click_plotly_button(graph, label)
        return [Step(click, before, name="on", check=lambda: plotly_value(graph, expression) is True),
                Step(click, before, name="off",
                     check=lambda: plotly_value(graph, expression) is False)]
    return Interaction(f"plotly button {label!r} of {key} (in the browser)", setup,
                       each_step_per_repeat=True)


def plotly_menu(key: str, label: str) -> Interaction:
    """A plotly figure's own dropdown menu of heat maps: choose its last entry other than the
    current one, then the current one back; the visible heat trace (trace i + 1 for entry i)
    must follow."""
    menu = "g.layout.updatemenus.find(m => m.type === 'dropdown')"
    shown = "g.data.findIndex(t => t.type === 'image' && t.visible === true)"

    def setup(page) -> list[Step]:
        graph = _one(plotly_graph(page, key), f"plotly chart {key!r}")
        if not plotly_value(graph, f"!!{menu}"):
            raise NotFound(f"menu of chart {key!r}")
        labels = plotly_value(graph, f"{menu}.buttons.map(b => b.label)")
        current = plotly_value(graph, f"{menu}.active")
        other = len(labels) - 1 if current != len(labels) - 1 else 0

        def before() -> None:
            graph.scroll_into_view_if_needed()

        def choose(i: int) -> Step:
            def act() -> None:
                shown_now = labels[plotly_value(graph, shown) - 1]
                choose_plotly_menu(graph, shown_now, labels[i])
            return Step(act, before, check=lambda: plotly_value(graph, shown) == i + 1)
        return [choose(other), choose(current)]
    return Interaction(f"plotly menu {label!r} of {key} (in the browser)", setup)


def expander(label: str) -> Interaction:
    """Fold and unfold an expander by its header (in the browser: no script run); the frame
    (a component) inside it must hide and show again. Each direction on its own row."""
    def setup(page) -> list[Step]:
        section = _one(page.locator('[data-testid="stExpander"]').filter(has_text=label),
                       f"expander {label!r}")
        header = section.locator("summary").first
        frame = section.locator("iframe").first

        def before() -> None:
            header.scroll_into_view_if_needed()
        return [Step(header.click, before, name="close", check=lambda: not frame.is_visible()),
                Step(header.click, before, name="open", check=frame.is_visible)]
    return Interaction(f"expander {label!r} (in the browser)", setup, each_step_per_repeat=True)


# ---- the pages ---------------------------------------------------------------------------------

def _visible(locator) -> bool:
    return locator.count() > 0 and locator.first.is_visible()


def sr_ready(page) -> bool:
    return _visible(page.get_by_role("heading", name="PSNR / SSIM"))


def _enhance_caption(page):
    return page.get_by_text("Enhance: the scan itself is enlarged")


def enhance_ready(page) -> bool:
    return _visible(_enhance_caption(page))


def analyze_ready(page) -> bool:
    return (_visible(page.get_by_role("heading", name="Prediction"))
            and _visible(page.get_by_text("calibrated probability")))


def upload(page, png: Path) -> None:
    page.set_input_files(UPLOADER, str(png))


def switch_to_enhance(page, png: Path) -> None:
    """Mode → Enhance; large scans ask before running ("Run super-resolution"): confirm."""
    group = _one(page.locator(BUTTON_GROUP).filter(has_text="Mode"), "segmented control 'Mode'")
    group.get_by_text("Enhance", exact=True).click()    # its buttons have the role "radio"
    confirm = page.get_by_role("button", name="Run super-resolution")
    confirm.or_(_enhance_caption(page)).first.wait_for()    # the page's default timeout
    if confirm.is_visible():
        confirm.click()


SR_INTERACTIONS = [
    selectbox("Compare the low-res input with", tab="Slider comparison"),
    selectbox("Difference of", tab="Difference map"),
    selectbox("Download"),
    selectbox("Rate the output of"),
    toggle("Interactive viewer"),
]
ANALYZE_INTERACTIONS = [
    plotly_slider("cam_picture", "Overlay opacity", "g.data[1].opacity"),
    plotly_switch("cam_picture", "Grad-CAM box",
                  "g.data.find(t => t.type === 'scatter' && t.visible === true).opacity === 1"),
    plotly_switch("seg_picture", "Grad-CAM box",
                  "g.layout.shapes.find(s => s.name === 'Grad-CAM box').visible"),
    plotly_menu("cam_picture", "Grad-CAM map (class · method)"),
    expander("Interactive viewer"),
]


@dataclass
class Case:
    name: str
    title: str                                   # the page's title in the sidebar
    first_run: Callable[[object, Path], None]    # the timed action
    ready: Callable[[object], bool]              # its result is shown
    interactions: list[Interaction]
    prepare: Callable[[object, Path], None] | None = None   # untimed, before the first run
    prepare_ready: Callable[[object], bool] | None = None
    first_label: str = "first run (upload)"


CASES = {
    "sr": Case("sr", "Super-resolution", upload, sr_ready, SR_INTERACTIONS),
    "analyze": Case("analyze", "Analyze", upload, analyze_ready, ANALYZE_INTERACTIONS),
    "sr-enhance": Case("sr-enhance", "Super-resolution", switch_to_enhance, enhance_ready,
                       SR_INTERACTIONS, prepare=upload, prepare_ready=sr_ready,
                       first_label="first run (Mode → Enhance)"),
}


# ---- running and reporting ---------------------------------------------------------------------

def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def log_sample(label: str, sample: Sample, verbose: bool) -> None:
    log(f"{label}: {sample}" + (f"\n    {sample.detail}" if verbose else ""))


def summarize(case: str, interaction: str, samples: list[Sample], first: Sample | None,
              error: str | None = None) -> dict:
    row = {"page": case, "interaction": interaction, "n": len(samples), "error": error,
           "samples": [{"seconds": round(s.seconds, 3), "clicked_s": round(s.clicked_s, 3),
                        "ws_bytes": s.ws_bytes,
                        "http_bytes": s.http_bytes} for s in samples]}
    if samples:
        seconds = statistics.median(s.seconds for s in samples)
        ws = statistics.median(s.ws_bytes for s in samples) / MB
        http = statistics.median(s.http_bytes for s in samples) / MB
        total = statistics.median((s.ws_bytes + s.http_bytes) for s in samples) / MB
        ratio = seconds / first.seconds if first and first.seconds > 0 else None
        row |= {"seconds": round(seconds, 3), "ratio": None if ratio is None else round(ratio, 4),
                "ws_mb": round(ws, 3), "http_mb": round(http, 3), "total_mb": round(total, 3),
                "time_ok": None if ratio is None else ratio <= TIME_TARGET,
                "bytes_ok": total <= BYTES_TARGET_MB}
    return row


def recover(page, traffic: Traffic, timeout: float) -> None:
    """After a failed step: let a run still going finish, so the next widget starts clean."""
    page.keyboard.press("Escape")
    status, start = page.locator(STATUS), time.perf_counter()
    while time.perf_counter() - start < timeout:
        page.wait_for_timeout(200)
        if (time.perf_counter() - traffic.last_activity() >= FIRST_QUIET_S
                and not status.is_visible()):
            return


def run_interaction(page, traffic: Traffic, case: str, interaction: Interaction,
                    first: Sample, args) -> list[dict]:
    try:
        steps = interaction.setup(page)
    except NotFound as err:
        return [summarize(case, interaction.label, [], first, f"not found: {err}")]
    except Exception as err:          # e.g. the list did not open
        recover(page, traffic, args.timeout)
        return [summarize(case, interaction.label, [], first, f"setup failed: {err}")]

    def timed(step: Step) -> Sample:
        if step.before:
            step.before()
        if step.check is not None:
            return measure_client(page, traffic, step.act, quiet=RERUN_QUIET_S,
                                  changed=step.check)
        return measure(page, traffic, step.act, quiet=RERUN_QUIET_S, timeout=args.timeout)

    samples: dict[str, list[Sample]] = {step.name: [] for step in steps}
    error = None
    try:
        if interaction.warm_up:
            for step in steps:
                timed(step)
        for i in range(args.repeats):
            for step in steps if interaction.each_step_per_repeat else [steps[i % 2]]:
                samples[step.name].append(timed(step))
                log_sample(f"  {interaction.label} {step.name}".rstrip(),
                           samples[step.name][-1], args.verbose)
    except Exception as err:
        error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        recover(page, traffic, args.timeout)
    return [summarize(case, f"{interaction.label} {name}".rstrip(), got, first, error)
            for name, got in samples.items()]


def run_case(url: str, case: Case, png: Path, args) -> dict:
    log(f"{case.name}: first run")
    with browser_page() as page:
        traffic = Traffic(page)
        login(page, url, "reader", PASSWORDS["reader"])
        open_page(page, case.title)
        page.set_default_timeout(args.timeout * 1000)        # e.g. waiting for a computation
        try:
            if case.prepare:
                measure(page, traffic, lambda: case.prepare(page, png), quiet=FIRST_QUIET_S,
                        timeout=args.timeout, ready=lambda: case.prepare_ready(page))
            else:   # warm-up (not timed): another scan, so the models are loaded
                warm = png.with_name(f"warm_{png.name}")
                warm.write_bytes(brain_png_bytes(args.size // 2))
                measure(page, traffic, lambda: case.first_run(page, warm),
                        quiet=FIRST_QUIET_S, timeout=args.timeout,
                        ready=lambda: case.ready(page))
            first = measure(page, traffic, lambda: case.first_run(page, png),
                            quiet=FIRST_QUIET_S, timeout=args.timeout,
                            ready=lambda: case.ready(page))
        except Exception as err:
            log(f"{case.name}: first run failed: {err}")
            return {"page": case.name, "first_run": None,
                    "error": f"first run failed: {type(err).__name__}: {err}", "rows": []}
        log_sample(f"{case.name}: first run", first, args.verbose)
        rows = []
        for interaction in case.interactions:
            rows += run_interaction(page, traffic, case.name, interaction, first, args)
    return {"page": case.name, "error": None, "rows": rows,
            "first_run": {"label": case.first_label, "seconds": round(first.seconds, 3),
                          "ws_mb": round(first.ws_bytes / MB, 3),
                          "http_mb": round(first.http_bytes / MB, 3),
                          "total_mb": round((first.ws_bytes + first.http_bytes) / MB, 3)}}


def _ok(flag) -> str:
    return "—" if flag is None else ("pass" if flag else "FAIL")


def print_table(results: list[dict]) -> None:
    print(f"Targets: rerun time ≤ {TIME_TARGET:.0%} of the page's first run, "
          f"≤ {BYTES_TARGET_MB:g} MB received per rerun (medians).")
    columns = ["page", "interaction", "n", "s", "/ first run", "ws MB", "http MB", "total MB",
               "time", "bytes"]
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    for case in results:
        first = case["first_run"]
        if first is None:
            print(f"| {case['page']} | first run | | {case['error']} | | | | | | |")
            continue
        print(f"| {case['page']} | **{first['label']}** | 1 | {first['seconds']:.2f} | 100 % | "
              f"{first['ws_mb']:.3f} | {first['http_mb']:.3f} | {first['total_mb']:.3f} | | |")
        for r in case["rows"]:
            if not r["n"]:
                print(f"| {r['page']} | {r['interaction']} | 0 | {r['error']} | | | | | | |")
                continue
            ratio = "—" if r["ratio"] is None else f"{r['ratio']:.1%}"
            note = f" ({r['error']})" if r["error"] else ""
            print(f"| {r['page']} | {r['interaction']}{note} | {r['n']} | {r['seconds']:.2f} | "
                  f"{ratio} | {r['ws_mb']:.3f} | {r['http_mb']:.3f} | {r['total_mb']:.3f} | "
                  f"{_ok(r['time_ok'])} | {_ok(r['bytes_ok'])} |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", type=int, default=512, help="the PNG's side in pixels")
    p.add_argument("--pages", default="sr,analyze",
                   help="comma-separated: sr, analyze, sr-enhance (the --enhance case)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tiny", action="store_true", help="the tests' tiny models, not weights/")
    p.add_argument("--enhance", action="store_true",
                   help="also Super-resolution in Enhance mode ×4 (size → 4·size)")
    p.add_argument("--timeout", type=float, default=300, help="seconds per run")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--verbose", action="store_true",
                   help="log what each run received (message types, largest HTTP responses)")
    args = p.parse_args()
    names = [n.strip() for n in args.pages.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        p.error(f"unknown page(s) {unknown}: choose from {', '.join(CASES)}")
    if args.enhance and "sr-enhance" not in names:
        names.append("sr-enhance")

    png = Path(tempfile.mkdtemp(prefix="bench-reruns-")) / f"brain_{args.size}.png"
    png.write_bytes(brain_png_bytes(args.size))
    with app_server(weights=None if args.tiny else ROOT / "weights",
                    startup_timeout=180) as (url, _env):
        results = [run_case(url, CASES[name], png, args) for name in names]
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"size": args.size, "repeats": args.repeats, "tiny": args.tiny,
             "targets": {"time_ratio": TIME_TARGET, "mb": BYTES_TARGET_MB},
             "cases": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
