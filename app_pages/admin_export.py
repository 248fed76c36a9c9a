"""TODO"""
import streamlit as st
from ui import auth
auth.require_role("admin")
st.title("admin_export")
