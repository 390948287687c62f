"""Customer sync, Monitor → App4Sales (SPEC §3–§5): assets, checks, job, sensor, schedule."""
