"""Customer export, App4Sales → Monitor (SPEC §6): one new customer's XML to ``customers/<code>.xml``."""

from monitor_pipeline.export.export_customer import (ExportCollisionError, ExportError, ExportResult,
                                                     export_new_customer, remote_path_for)
from monitor_pipeline.export.filenames import UnsafeFileNameError, validate_customer_code
from monitor_pipeline.export.xml_check import MalformedCustomerXmlError, check_well_formed, encode_customer_xml

__all__ = [
    "ExportCollisionError", "ExportError", "ExportResult", "MalformedCustomerXmlError", "UnsafeFileNameError",
    "check_well_formed", "encode_customer_xml", "export_new_customer", "remote_path_for", "validate_customer_code",
]
