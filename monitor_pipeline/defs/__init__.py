"""The Dagster definitions, one folder per flow (as ``dagster-io/dagster-open-platform`` keeps ``defs/<area>/``):

- ``customer_sync/`` — Monitor → App4Sales: assets ``customers_xml`` → frames → ``customer_upsert_batches`` → ``customer_changes``,
  their checks (``exported_customers_arrived``: did Monitor create what the export delivered?),
  ``customer_sync_job``, ``customers_xml_sensor``, ``customer_sync_schedule``;
- ``customer_export/`` — App4Sales → Monitor: ``export_new_customer_job`` and ``new_customer_sensor``;
- ``run_tags.py`` — the run tags both flows set (hosts, administration), limited in ``dagster.yaml``.

Each area's ``definitions.py`` builds its part for the deployment's tenants; ``monitor_pipeline/definitions.py``
merges them and binds the resources (``monitor_pipeline/resources/``) in one place. The domain packages
(``customers/``, ``app4sales/``, ``transport/``, ``export/``) stay outside, without Dagster.
"""
