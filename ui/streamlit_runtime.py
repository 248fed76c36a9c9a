"""Per-run work Streamlit does that this app must not pay for on every rerun.

After every script run, including a fragment's, Streamlit 1.67 calls
``keras.backend.clear_session()`` whenever Keras is imported
(``script_runner._clean_problem_modules``, meant for TF1-era graph growth). Under TensorFlow
that resets the default graph, **clears the eager kernel cache** and runs a full
``gc.collect()``; with TensorFlow and the models loaded that took 0.25 s per run on this
2-core machine, and the next prediction had to rebuild its kernels. The app keeps its models
in ``st.cache_resource`` and builds none per run, so there is nothing for it to clean:
:func:`keep_keras_state` replaces that hook with one that only closes matplotlib figures (the
hook's other job). A second full ``gc.collect()`` per run is switched off in
``.streamlit/config.toml`` (``runner.postScriptGC = false``): reference counting frees the
arrays of a finished run, and Python's own generational collector still runs.

Measured with ``benchmarks/bench_reruns.py`` (see the README): a fragment rerun went from
about 0.5 s to about 0.05 s.
"""
from __future__ import annotations

import sys

__all__ = ["keep_keras_state", "STREAMLIT_HOOK"]


def _close_matplotlib_figures() -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


def _streamlit_hook():
    from streamlit.runtime.scriptrunner import script_runner

    return getattr(script_runner, "_clean_problem_modules", None)


#: Streamlit's own after-run hook, as it was before :func:`keep_keras_state` replaced it.
STREAMLIT_HOOK = _streamlit_hook()


def keep_keras_state() -> bool:
    """Replace Streamlit's after-run Keras reset (idempotent). False when this Streamlit has no
    such hook (then there is nothing to replace)."""
    from streamlit.runtime.scriptrunner import script_runner

    if _streamlit_hook() is None:
        return False
    script_runner._clean_problem_modules = _close_matplotlib_figures
    return True
