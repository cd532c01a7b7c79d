"""A policy served over openpi's websocket protocol (openpi's `serve_policy.py` or `vla-ros serve`)."""
