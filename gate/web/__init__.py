"""The dashboard room: HTML pages rendered from templates/, reading through the store's queries."""
