"""Domain errors raised by actions and mapped to HTTP answers by the API layer."""


class DomainError(Exception):
    """Base class: a rule of the domain refused the action."""

    status_code = 400
    code = "invalid"  # the API's machine-readable error code (contentapp.api.ERROR_CODES)

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_errors(self) -> dict[str, list[str]]:
        """The error as the API's ``errors`` member: ``{field: [messages]}``."""
        return {self.field or "non_field_errors": [self.message]}


class InvalidInput(DomainError):
    """Input that no state could accept (400)."""

    status_code = 400


class Unauthenticated(DomainError):
    """No valid credentials: a wrong username or password, say (401)."""

    status_code = 401
    code = "not_authenticated"


class PermissionDenied(DomainError):
    """The actor may not take this action (403)."""

    status_code = 403
    code = "permission_denied"


class NotFound(DomainError):
    """The object does not exist or the actor may not see it (404)."""

    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    """The object's current state does not allow the action (409)."""

    status_code = 409
    code = "conflict"


class ServiceUnavailable(DomainError):
    """A service the action needs (the task queue) does not answer now (503)."""

    status_code = 503
    code = "unavailable"


class PayloadTooLarge(DomainError):
    """A body or file over its size limit (413)."""

    status_code = 413
    code = "too_large"
