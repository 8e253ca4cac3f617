"""The HTTP room: JSON routes under /api/v1. Calls the store; never holds business rules."""
