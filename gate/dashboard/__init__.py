"""The dashboard: HTML routes over plain-data views; templates/ mirrors the routes."""
