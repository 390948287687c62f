"""Errors of the customers.xml normalization."""

from __future__ import annotations


class CustomersXmlError(ValueError):
    """customers.xml cannot be used at all (SPEC §4): the message names the file and the line."""

    def __init__(self, path: str, line: int | None, problem: str):
        self.path, self.line, self.problem = path, line, problem
        where = f"{path}, line {line}" if line else f"{path}"
        super().__init__(f"{where}: {problem}")


class ExtraDataError(ValueError):
    """extraCustomerData.csv exists but cannot be read (SPEC §3: an unreadable one is an error)."""
