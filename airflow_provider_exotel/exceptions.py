"""Exceptions raised by the Exotel provider.

``ExotelError`` derives from ``AirflowException`` so Airflow treats it like any other task failure.
Messages carry the HTTP status, Exotel's own error code and message, and the ``request_id`` — never a
credential.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import AirflowException


class ExotelError(AirflowException):
    """Base class of every error raised by this provider.

    :param message: human-readable description.
    :param status: HTTP status code, when the error came from an HTTP answer.
    :param error_code: Exotel's own error code (``error_data.code``, an int, or a ``RestException``'s
        ``Code`` such as ``"RATE_LIMIT_EXCEEDED"``), when given.
    :param request_id: Exotel's ``request_id`` for the failing request, when given.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: int | str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.request_id = request_id

    def __reduce__(self) -> tuple[Any, ...]:  # keep keyword details when pickled (e.g. across processes)
        return (
            _rebuild,
            (type(self), str(self), self.status, self.error_code, self.request_id),
        )


def _rebuild(
    cls: type[ExotelError],
    message: str,
    status: int | None,
    error_code: int | str | None,
    request_id: str | None,
) -> ExotelError:  # pragma: no cover - pickling helper
    return cls(message, status=status, error_code=error_code, request_id=request_id)


class ExotelAuthError(ExotelError):
    """Exotel refused the credentials (HTTP 401) or the account has no access (HTTP 403)."""


class ExotelRequestError(ExotelError):
    """A request failed: a non-retryable HTTP error, or a transient one once retries ran out."""


class ExotelRateLimitError(ExotelRequestError):
    """The account's request budget stayed spent longer than the hook's ``rate_limit_wait``.

    ``status`` is 429; the message carries Exotel's ``RestException`` code and message.
    """


class ExotelValidationError(ExotelError, ValueError):
    """Bad input, detected before any request was sent. The message names the argument."""


__all__ = [
    "ExotelAuthError",
    "ExotelError",
    "ExotelRateLimitError",
    "ExotelRequestError",
    "ExotelValidationError",
]
