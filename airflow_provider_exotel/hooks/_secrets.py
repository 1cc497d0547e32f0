"""Secret masking and redaction, best effort (Airflow's masker may be absent outside a task)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def mask(secret: str) -> None:
    """Register ``secret`` with Airflow's secrets masker so it never appears in task logs."""
    try:
        from airflow.providers.common.compat.sdk import mask_secret

        mask_secret(secret)
    except Exception:  # pragma: no cover - masking is best effort outside a task
        log.debug("could not register a secret with the masker", exc_info=True)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    try:
        from airflow.providers.common.compat.sdk import redact as _redact

        return str(_redact(text))
    except Exception:  # pragma: no cover
        return text
