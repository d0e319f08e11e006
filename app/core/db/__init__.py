"""Database engine, base model and the unit of work used outside HTTP requests."""

from app.core.db.base import Base, DatabaseClockMixin, utc_now
from app.core.db.engine import Database
from app.core.db.unit_of_work import UnitOfWork, shared_unit_of_work, unit_of_work

__all__ = [
    "Base",
    "Database",
    "DatabaseClockMixin",
    "UnitOfWork",
    "shared_unit_of_work",
    "unit_of_work",
    "utc_now",
]
