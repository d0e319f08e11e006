"""Parley beside Node socket.io: `python -m bench` (see run.py)."""
