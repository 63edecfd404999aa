"""Domain errors. Each has a stable machine-readable ``code``; the HTTP layer maps
the three families to status codes (404, 409, 422)."""

from __future__ import annotations


class DomainError(Exception):
    code = "domain-error"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class NotFoundError(DomainError):
    """The thing a command refers to does not exist."""

    code = "not-found"


class ConflictError(DomainError):
    """The command clashes with the current state (already done, sold out, full...)."""

    code = "conflict"


class RuleViolationError(DomainError):
    """The command is well-formed but breaks a business rule."""

    code = "rule-violation"
