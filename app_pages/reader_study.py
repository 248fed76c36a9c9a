"""TODO"""
import streamlit as st
from ui import auth
auth.require_role()
st.title("reader_study")
