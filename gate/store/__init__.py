"""The store room: SQLAlchemy models and the operations that change them. No HTTP."""
