"""Errors that carry their meaning to every edge: the API renders them, the CLI prints them."""

from __future__ import annotations


class GateError(Exception):
    """Something went wrong in gate."""

    status_code = 500
    code = "internal_error"  # stable for programs, as `detail` is for people

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.field = field
        super().__init__(self.message)


class InvalidInput(GateError):
    """The request is malformed."""

    status_code = 422
    code = "invalid_input"


class NotFound(GateError):
    """No such object."""

    status_code = 404
    code = "not_found"


class Conflict(GateError):
    """The request conflicts with the current state."""

    status_code = 409
    code = "conflict"


class TooLarge(GateError):
    """The upload is larger than the server accepts."""

    status_code = 413
    code = "too_large"


class Unauthorized(GateError):
    """A valid bearer token is required."""

    status_code = 401
    code = "unauthorized"


class Forbidden(GateError):
    """The token lacks the scope this request needs."""

    status_code = 403
    code = "forbidden"


class Unavailable(GateError):
    """This feature is not configured on the server."""

    status_code = 503
    code = "unavailable"
