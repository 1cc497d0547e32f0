"""OpenLineage for the Exotel operators: what each one read and wrote.

The operators' ``get_openlineage_facets_on_complete`` call :func:`operator_lineage` with the Exotel
datasets and files they used. OpenLineage is imported only inside those calls, so the provider works
(and DAG files parse) without ``apache-airflow-providers-openlineage`` installed.

Naming (following the OpenLineage naming conventions):

* Exotel: namespace ``exotel://<api host>[:port]`` (e.g. ``exotel://api.exotel.com`` or
  ``exotel://api.in.exotel.com``), name ``accounts/<account_sid>/contacts`` or
  ``accounts/<account_sid>/lists/<list_sid>/contacts``.
* Local files: namespace ``file``, name the absolute path. Object storage (``ObjectStoragePath``):
  its own namespace (``s3://bucket``, ...) and key, as common-io's ``FileTransferOperator`` does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow_provider_exotel._compat import is_os_path
from airflow_provider_exotel.operators._base import account_of, is_deferred
from airflow_provider_exotel.operators._files import to_path

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_exotel.hooks.contacts import ExotelContactsHook

log = logging.getLogger(__name__)

__all__ = [
    "ExotelTarget",
    "add_alias_events",
    "asset_uri",
    "exotel_namespace",
    "file_dataset_name",
    "operator_lineage",
    "with_asset",
]


#: An Exotel dataset to report: ``None`` for all contacts of the account, or a list sid.
ExotelTarget = str | None


def exotel_namespace(hook: ExotelContactsHook) -> tuple[str, str]:
    """``("exotel://<host[:port]>", account_sid)`` of the hook's connection (no request is sent)."""
    origin, account_sid = account_of(hook)
    parts = urlsplit(origin)
    return f"exotel://{parts.hostname}{f':{parts.port}' if parts.port else ''}", account_sid


def exotel_dataset_name(account_sid: str, list_sid: ExotelTarget = None) -> str:
    """``accounts/<sid>/contacts`` or ``accounts/<sid>/lists/<list_sid>/contacts``."""
    account = quote(account_sid, safe="")
    if list_sid is None:
        return f"accounts/{account}/contacts"
    return f"accounts/{account}/lists/{quote(list_sid, safe='')}/contacts"


def file_dataset_name(path: Any) -> tuple[str, str] | None:
    """``(namespace, name)`` of a rendered path or storage URL; ``None`` when there is none."""
    if path is None or (isinstance(path, str) and not path.strip()):
        return None
    if isinstance(path, str) and "://" in path:
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        path = ObjectStoragePath(path)
    if hasattr(path, "protocol"):  # an ObjectStoragePath (on Airflow 2.x also a pathlib.Path)
        protocol = path.protocol if isinstance(path.protocol, str) else path.protocol[0]
        if protocol in ("file", "local", ""):
            return "file", "/" + str(path.key).lstrip("/")
        namespace = getattr(path, "namespace", None) or (
            f"{protocol}://{path.bucket}" if getattr(path, "bucket", None) else protocol
        )
        return namespace, str(path.key).lstrip("/")
    return "file", str(Path(os.path.expanduser(os.fspath(path))).resolve())


def operator_lineage(
    operator: Any,
    *,
    exotel_inputs: Iterable[ExotelTarget] = (),
    exotel_outputs: Iterable[ExotelTarget] = (),
    file_inputs: Iterable[Any] = (),
    file_outputs: Iterable[Any] = (),
) -> OperatorLineage:
    """The ``OperatorLineage`` of one Exotel operator run.

    :param operator: the operator (its ``hook`` gives the connection's host and account sid).
    :param exotel_inputs: Exotel datasets read: ``None`` (all contacts) or list sids.
    :param exotel_outputs: Exotel datasets written.
    :param file_inputs: paths or storage URLs read (``None`` entries are skipped).
    :param file_outputs: paths or storage URLs written.
    """
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    exotel_in, exotel_out = list(exotel_inputs), list(exotel_outputs)
    inputs: list[Dataset] = []
    outputs: list[Dataset] = []
    if exotel_in or exotel_out:
        try:
            namespace, account_sid = exotel_namespace(operator.hook)
        except Exception as exc:  # lineage must never fail a task that succeeded
            log.warning("OpenLineage: cannot name the Exotel datasets (%s)", exc)
        else:
            for targets, datasets in ((exotel_in, inputs), (exotel_out, outputs)):
                datasets += [
                    Dataset(namespace=namespace, name=exotel_dataset_name(account_sid, t)) for t in targets
                ]
        finally:
            operator._close_hook()
    for paths, datasets in ((file_inputs, inputs), (file_outputs, outputs)):
        for path in paths:
            named = file_dataset_name(path)
            if named is not None:
                datasets.append(Dataset(namespace=named[0], name=named[1]))
    return OperatorLineage(inputs=inputs, outputs=outputs)


# ---------------------------------------------------------------------------------------- Assets
def asset_uri(value: Any) -> str | None:
    """The Asset URI for a statically known output path (``None`` when it is templated)."""
    if value is None or is_deferred(value):
        return None
    if isinstance(value, str) and "://" in value:
        return value
    path = to_path(value)
    if is_os_path(path):
        return path.resolve().as_uri()
    return str(path)


def with_asset(outlets: Any, uri: str) -> list[Any]:
    """``outlets`` (one, a list, or none) plus an Asset of ``uri`` unless one is there already."""
    from airflow.providers.common.compat.sdk import Asset

    current = list(outlets) if isinstance(outlets, (list, tuple)) else ([outlets] if outlets else [])
    if not any(getattr(o, "uri", None) == uri for o in current):
        current.append(Asset(uri))
    return current


def add_alias_events(context: Any, outlets: Any, target: Any) -> None:
    """Attach the written file, as an Asset, to every ``AssetAlias`` outlet of the task.

    This is how a *templated* ``output_path`` (one file per run) becomes an Asset event: declare
    ``outlets=[AssetAlias("exotel-export")]`` and schedule downstream DAGs on that alias.
    """
    aliases = [o for o in (outlets or []) if type(o).__name__ in ("AssetAlias", "DatasetAlias")]
    if not aliases:
        return
    from airflow.providers.common.compat.sdk import Asset

    uri = asset_uri(str(target) if is_os_path(target) else target)
    events = context.get("outlet_events") if hasattr(context, "get") else None
    if uri is None or events is None:
        return
    for alias in aliases:
        events[alias].add(Asset(uri))
