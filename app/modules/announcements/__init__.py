"""Announcements: admin broadcasts to every connected user, replayed at login."""
