"""Sensors: a new customers.xml (sync) and new App4Sales customers (export)."""
