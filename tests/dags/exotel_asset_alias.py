"""Test DAG: a templated output_path (one file per run) reported through an AssetAlias outlet."""

from __future__ import annotations

import datetime as dt
import os

from airflow.providers.common.compat.sdk import DAG, AssetAlias

from airflow_provider_exotel.operators.contacts import ExotelFetchContactsOperator

OUT = os.environ.get("EXOTEL_ALIAS_DIR", "/tmp/exotel_alias")

with DAG(
    dag_id="exotel_asset_alias_export",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["exotel", "test"],
):
    ExotelFetchContactsOperator(
        task_id="export",
        output_path=OUT + "/contacts-{{ ds_nodash }}.jsonl",
        outlets=[AssetAlias("exotel-contacts-export")],
    )

with DAG(
    dag_id="exotel_asset_alias_consumer",
    schedule=[AssetAlias("exotel-contacts-export")],
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["exotel", "test"],
):
    pass
