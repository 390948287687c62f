"""Errors of the customers.xml normalization."""

from __future__ import annotations


class InputFileError(ValueError):
    """An input file cannot be used at all: the message is ``<path>, line <n>: <problem>``; ``path``,
    ``line`` (None when no line applies) and ``problem`` are attributes, so a caller that knows where
    the file came from (the server) can say so."""

    def __init__(self, path: str, line: int | None, problem: str):
        self.path, self.line, self.problem = path, line, problem
        where = f"{path}, line {line}" if line else f"{path}"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):  # picklable despite the custom signature (the split worker sends errors back)
        return (self.__class__, (self.path, self.line, self.problem))


class CustomersXmlError(InputFileError):
    """customers.xml cannot be used at all (SPEC §4)."""


class ExtraDataError(InputFileError):
    """extraCustomerData.csv exists but cannot be read (SPEC §3: an unreadable one is an error)."""
