"""Customer export, App4Sales → Monitor (SPEC §6): the sensor-triggered job, one run per new customer."""
