"""Auth: API tokens and the scopes they grant."""
