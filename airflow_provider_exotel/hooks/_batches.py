"""Bulk calls (private): the result classes, the one per-item resend loop and the one batch runner
(chunking, bounded concurrency, stop on error keeping the partial result), used by bulk update,
create, list additions and list removals alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

from airflow_provider_exotel.exceptions import ExotelAuthError, ExotelError
from airflow_provider_exotel.hooks._answers import item_outcome
from airflow_provider_exotel.hooks._retry import AmbiguousRequestError, backoff


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """One input item's fate: ``code is None`` for applied (``value``: e.g. the new sid)."""

    code: int | None
    message: str = ""
    value: str | None = None

    @classmethod
    def done(cls, value: str | None = None) -> Outcome:
        return cls(None, "", value)


class BulkResult:
    """What :class:`BulkUpdateResult` and :class:`BulkCreateResult` share: ``total``, the applied
    items (``_DONE`` names the list), ``failed`` (one dict per item, keyed by ``_KEY``), ``ok``."""

    _KEY: ClassVar[str]
    _DONE: ClassVar[str]
    _VERB: ClassVar[str]
    total: int
    failed: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        """True when no item failed."""
        return not self.failed

    def _done(self) -> list[Any]:
        done: list[Any] = getattr(self, self._DONE)
        return done

    def _failed_keys(self) -> list[str]:
        return [f[self._KEY] for f in self.failed]

    def merge(self, other: Self) -> Self:
        """Append ``other`` (a later batch) to this result, in place; returns ``self``."""
        self.total += other.total
        self._done().extend(other._done())
        self.failed.extend(other.failed)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: counts of ``total``, the applied and ``failed``, plus the failed keys."""
        return {
            "total": self.total,
            self._DONE: len(self._done()),
            "failed": len(self.failed),
            f"failed_{self._KEY}s": self._failed_keys(),
        }

    def _entry(self, key: str, value: str | None) -> Any:
        return key

    @classmethod
    def from_outcomes(cls, keys: Sequence[str], outcomes: Mapping[str, Outcome], missing: Outcome) -> Self:
        """The result of ``keys`` in input order; a key without an outcome gets ``missing``."""
        result = cls(total=len(keys))  # type: ignore[call-arg]
        for key in keys:
            got = outcomes.get(key, missing)
            if got.code is None:
                result._done().append(result._entry(key, got.value))
            else:
                result.failed.append({cls._KEY: key, "code": got.code, "message": got.message})
        return result

    @classmethod
    def unknown(cls, keys: Sequence[str], error: BaseException, *, sent: bool) -> Self:
        """A batch whose outcome is not known (``sent``) or that was never sent: all failed."""
        return cls.from_outcomes(keys, {}, _ended(cls._VERB, error, sent=sent))


def _ended(verb: str, error: BaseException, *, sent: bool) -> Outcome:
    reason = str(error) or type(error).__name__
    if sent:
        message = f"outcome unknown, the {verb} ended while this batch was in flight: {reason}"
    else:
        message = f"not sent, the {verb} ended before this batch: {reason}"
    return Outcome(error.status if isinstance(error, ExotelError) and error.status else 0, message)


@dataclass
class BulkUpdateResult(BulkResult):
    """Outcome of a bulk update (also of list additions and removals, by contact sid).

    :param total: number of contacts submitted.
    :param succeeded: sids Exotel reported as updated, in input order.
    :param failed: one ``{"sid", "code", "message"}`` dict per contact that was not updated.
    """

    _KEY: ClassVar[str] = "sid"
    _DONE: ClassVar[str] = "succeeded"
    _VERB: ClassVar[str] = "update"
    total: int = 0
    succeeded: list[str] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed_sids(self) -> list[str]:
        return self._failed_keys()


@dataclass
class BulkCreateResult(BulkResult):
    """Outcome of :meth:`ExotelContactsHook.create_contacts`.

    :param total: number of contacts submitted.
    :param created: one ``{"number", "sid"}`` per created contact, in input order (``number`` is
        the normalised number that was sent).
    :param failed: one ``{"number", "code", "message"}`` per contact that was not created.
    """

    _KEY: ClassVar[str] = "number"
    _DONE: ClassVar[str] = "created"
    _VERB: ClassVar[str] = "create"
    total: int = 0
    created: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed_numbers(self) -> list[str]:
        return self._failed_keys()

    def _entry(self, key: str, value: str | None) -> Any:
        return {"number": key, "sid": value}


def unknown_batch(batch: list[dict[str, Any]], error: BaseException, *, sent: bool) -> BulkUpdateResult:
    """A bulk-update batch (contacts with ``sid``) whose outcome is unknown (``sent``) or that was
    never sent: every contact failed, saying which."""
    return BulkUpdateResult.unknown([c["sid"] for c in batch], error, sent=sent)


# --------------------------------------------------------------------------------------------------
# The one per-item resend loop
# --------------------------------------------------------------------------------------------------
NO_RESULT = Outcome(0, "no result returned by Exotel for this contact")


@dataclass(frozen=True)
class Resend:
    """How one batch is sent and its answer read.

    :param label: e.g. ``"PUT contacts"`` (for log lines).
    :param key: an input item's key (its sid or number).
    :param send: sends the items, returns the answer body (raises an ``ExotelError``).
    :param pair: pairs the items sent with their answer items.
    :param not_applied: how a refused item is described, e.g. ``"not updated"``.
    :param needs_sid: a success must carry the new object's ``data.sid`` (creates).
    :param recover: after a lost answer (``AmbiguousRequestError``): ``recover(items, first_sent)``
        returns ``{key: sid}`` of the items found applied (``first_sent``: local epoch time of the
        batch's first send); without it a lost answer fails the items sent.
    """

    label: str
    key: Callable[[Any], str]
    send: Callable[[list[Any]], dict[str, Any]]
    pair: Callable[[list[Any], dict[str, Any]], list[tuple[Any, Any]]]
    retry_limit: int
    retry_delay: float
    log: Any
    not_applied: str = "not applied"
    needs_sid: bool = False
    recover: Callable[[list[Any], float], dict[str, str]] | None = None
    sleep: Callable[[float], None] = time.sleep


def resend(batch: list[Any], spec: Resend) -> dict[str, Outcome]:
    """Send ``batch``; re-send the items whose outcome is transient (5xx, 429, a lost answer with
    ``recover``), up to ``retry_limit`` times. On an exception, what is known travels with it as
    ``batch_outcomes`` (a refused request's items as "not applied")."""
    outcomes: dict[str, Outcome] = {}
    first_sent = time.time()
    todo = batch
    try:
        for attempt in range(spec.retry_limit + 1):
            todo = _round(spec, todo, outcomes, first_sent, last=attempt == spec.retry_limit)
            if not todo:
                break
            spec.log.warning("Exotel %s: %d item(s) not applied yet; re-sending them", spec.label, len(todo))
            spec.sleep(backoff(spec.retry_delay, attempt + 1))
    except ExotelAuthError as exc:
        for item in todo:  # refused: not applied (unless a lost answer left it unknown)
            before = outcomes.get(spec.key(item))
            if before is None or _transient(before):
                outcomes[spec.key(item)] = Outcome(exc.status or 0, f"{spec.not_applied}: {exc}")
        _attach(exc, outcomes)
        raise
    except BaseException as exc:
        _attach(exc, outcomes)
        raise
    return outcomes


def _attach(exc: BaseException, outcomes: dict[str, Outcome]) -> None:
    try:
        exc.batch_outcomes = outcomes  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - exceptions without a __dict__
        pass


def _round(
    spec: Resend, todo: list[Any], outcomes: dict[str, Outcome], first_sent: float, *, last: bool
) -> list[Any]:
    """One request for ``todo``; returns the items to re-send."""
    try:
        body = spec.send(todo)
    except ExotelAuthError:
        raise
    except AmbiguousRequestError as exc:
        if spec.recover is not None:
            return _recover(spec, todo, outcomes, exc, first_sent, last=last)
        _fail_all(spec, todo, outcomes, Outcome(exc.status or 0, str(exc)))
        return []
    except ExotelError as exc:
        _fail_all(spec, todo, outcomes, Outcome(exc.status or 0, str(exc)))
        return []
    retry: list[Any] = []
    for item, answer in spec.pair(todo, body):
        got = _outcome(answer, spec.needs_sid)
        outcomes[spec.key(item)] = got
        if _transient(got):
            retry.append(item)
    return [] if last else retry


def _transient(outcome: Outcome) -> bool:
    return outcome.code is not None and (outcome.code >= 500 or outcome.code == 429)


def _outcome(answer: Any, needs_sid: bool) -> Outcome:
    code, message, data = item_outcome(answer)
    if code is not None:
        return Outcome(code, message if answer is not None else NO_RESULT.message)
    sid = data.get("sid")
    if needs_sid and not isinstance(sid, str):
        return Outcome(0, "Exotel reported success without the new contact's sid")
    return Outcome.done(sid if isinstance(sid, str) else None)


def _fail_all(spec: Resend, items: list[Any], outcomes: dict[str, Outcome], outcome: Outcome) -> None:
    for item in items:
        outcomes[spec.key(item)] = outcome


def _recover(
    spec: Resend,
    todo: list[Any],
    outcomes: dict[str, Outcome],
    lost: AmbiguousRequestError,
    first_sent: float,
    *,
    last: bool,
) -> list[Any]:
    """A lost answer: find what was applied (``spec.recover``); the rest is re-sent (or fails)."""
    assert spec.recover is not None
    try:
        found = spec.recover(todo, first_sent)
    except ExotelAuthError as exc:
        message = f"outcome unknown, answer lost ({lost}) and the look-up was refused: {exc}"
        _fail_all(spec, todo, outcomes, Outcome(exc.status or 0, message))
        raise
    except ExotelError as exc:
        message = (
            f"{lost}; looking the items up failed too ({exc}), so it may or may not have been "
            "applied: check before sending it again"
        )
        _fail_all(spec, todo, outcomes, Outcome(lost.status or 0, message))
        return []
    for key, sid in found.items():
        outcomes[key] = Outcome.done(sid)
    rest = [item for item in todo if spec.key(item) not in found]
    spec.log.warning(
        "Exotel %s: answer lost (%s); %d of the batch applied, %d to re-send",
        spec.label,
        lost,
        len(found),
        len(rest),
    )
    if last:
        _fail_all(spec, rest, outcomes, Outcome(lost.status or 0, str(lost)))
        return []
    return rest


# --------------------------------------------------------------------------------------------------
# The one batch runner
# --------------------------------------------------------------------------------------------------
R = TypeVar("R", bound=BulkResult)


@dataclass
class _Run(Generic[R]):
    """State of one :func:`run_batches`: results by batch, which batches went out, the errors."""

    batches: list[list[Any]]
    send_batch: Callable[[list[Any]], R]
    done: list[R | None]
    started: list[bool]
    stop: threading.Event = field(default_factory=threading.Event)
    gate: threading.Lock = field(default_factory=threading.Lock)  # started, or never sent
    errors: list[BaseException] = field(default_factory=list)

    def halt(self) -> None:
        with self.gate:
            self.stop.set()

    def run(self, i: int) -> None:
        with self.gate:
            if self.stop.is_set():
                return  # an earlier batch ended the run: this one is never sent
            self.started[i] = True
        try:
            self.done[i] = self.send_batch(self.batches[i])
        except BaseException as exc:
            self.halt()
            self.errors.append(exc)
            known = getattr(exc, "partial_result", None)  # e.g. a 401: this batch was refused
            if isinstance(known, BulkResult) and known.total == len(self.batches[i]):
                self.done[i] = known  # type: ignore[assignment]


def run_batches(
    items: list[Any],
    batch_size: int,
    concurrency: int,
    send_batch: Callable[[list[Any]], R],
    result_type: type[R],
    key: Callable[[Any], str],
    thread_name: str = "exotel-bulk",
) -> R:
    """Send ``items`` in batches of ``batch_size``, up to ``concurrency`` at once; merge the results
    in input order.

    Whatever ends the run (an error of one batch, the task's ``execution_timeout`` in this thread),
    no further batch is sent and the exception is raised carrying ``partial_result``: a
    ``result_type`` of the whole input where the batches that completed count as they did (a
    batch's own ``partial_result``, e.g. of a 401, too) and every other item is failed as "outcome
    unknown" (in flight) or "not sent".
    """
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    state: _Run[R] = _Run(batches, send_batch, [None] * len(batches), [False] * len(batches))
    try:
        _drive(state, min(concurrency, len(batches)), thread_name)
    except BaseException as exc:
        state.halt()
        state.errors.insert(0, exc)
    error = state.errors[0] if state.errors else None
    result = result_type()
    for i, batch in enumerate(batches):
        part = state.done[i]
        if part is None:
            assert error is not None
            part = result_type.unknown([key(x) for x in batch], error, sent=state.started[i])
        result.merge(part)
    if error is not None:
        error.partial_result = result  # type: ignore[attr-defined]
        raise error
    return result


def _drive(state: _Run[Any], workers: int, thread_name: str) -> None:
    if workers <= 1:
        for i in range(len(state.batches)):
            state.run(i)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix=thread_name)
    try:
        for future in [pool.submit(state.run, i) for i in range(len(state.batches))]:
            future.result()
    except BaseException:
        # e.g. the task's execution_timeout, raised in this thread: send nothing more and do not
        # wait; batches in flight end in the background, outcome unknown
        state.halt()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def batch_sender(spec_for: Callable[[list[Any]], Resend], result_type: type[R]) -> Callable[[list[Any]], R]:
    """``send_batch`` for :func:`run_batches` over :func:`resend`: the batch's result, or its
    exception carrying the batch's ``partial_result`` (known outcomes kept, the rest unknown)."""

    def send_batch(batch: list[Any]) -> R:
        spec = spec_for(batch)
        keys = [spec.key(x) for x in batch]
        try:
            outcomes = resend(batch, spec)
        except BaseException as exc:
            known = getattr(exc, "batch_outcomes", {})
            missing = _ended(result_type._VERB, exc, sent=True)
            exc.partial_result = result_type.from_outcomes(keys, known, missing)  # type: ignore[attr-defined]
            raise
        return result_type.from_outcomes(keys, outcomes, NO_RESULT)

    return send_batch


__all__ = [
    "BulkCreateResult",
    "BulkResult",
    "BulkUpdateResult",
    "Outcome",
    "Resend",
    "batch_sender",
    "resend",
    "run_batches",
    "unknown_batch",
]
