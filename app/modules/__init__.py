"""Parley's own modules; `app.main` composes them."""
