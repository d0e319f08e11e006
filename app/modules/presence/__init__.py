"""Presence (who is online) and typing indicators."""
