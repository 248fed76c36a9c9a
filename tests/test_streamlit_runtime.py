"""Streamlit's after-run hook must not reset Keras (clear the TF kernel cache + gc.collect) on
every rerun, and the post-run gc is off in the shipped config (ui/streamlit_runtime.py)."""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from streamlit.runtime.scriptrunner import script_runner

from ui.streamlit_runtime import STREAMLIT_HOOK, keep_keras_state

ROOT = Path(__file__).resolve().parent.parent


def test_after_run_hook_keeps_keras_and_closes_matplotlib(monkeypatch):
    import types

    import keras

    closed = []          # matplotlib is not a dependency: a stand-in pyplot module
    plt = types.SimpleNamespace(close=lambda which: closed.append(which))
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", plt)
    cleared = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *a, **k: cleared.append(1))
    # Streamlit's own hook (an AppTest of app.py earlier in the session has replaced it)
    monkeypatch.setattr(script_runner, "_clean_problem_modules", STREAMLIT_HOOK)
    script_runner._clean_problem_modules()
    assert cleared, "Streamlit's own hook no longer resets Keras: this module can go"
    cleared.clear()

    closed.clear()
    assert keep_keras_state() and keep_keras_state()          # idempotent
    script_runner._clean_problem_modules()
    assert not cleared and closed == ["all"]
    assert "keras" in sys.modules


def test_the_app_applies_it_and_the_config_turns_post_run_gc_off():
    assert "keep_keras_state()" in (ROOT / "app.py").read_text()
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
