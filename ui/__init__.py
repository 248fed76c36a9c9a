"""Streamlit helpers shared by the pages: login, cached loaders, plots, rating form.

Only this package and ``app.py`` / ``pages/`` import streamlit; ``core`` never does. Functions
named ``*_ui`` draw widgets and return plain values.
"""
