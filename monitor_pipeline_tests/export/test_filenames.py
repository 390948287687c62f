import pytest

from monitor_pipeline.export.filenames import UnsafeFileNameError, validate_customer_code


@pytest.mark.parametrize("code", ["C00124", "a", "A-b_c.1", "x" * 64, "..a", ".hidden", "C.00.1"])
def test_safe_codes_pass_unchanged(code):
    assert validate_customer_code(code) == code


@pytest.mark.parametrize("code, fragment", [
    ("../etc/x", "'/'"),
    ("a/b", "'/'"),
    ("a\\b", "'\\\\'"),
    (".", "not a usable file name"),
    ("..", "not a usable file name"),
    ("x" * 65, "65 characters"),
    ("", "empty"),
    ("C 1", "' '"),
    ("C:1", "':'"),
    ("Cö1", "'ö'"),
    ("C\u0661", "only A-Z"),      # Arabic-Indic digit one: a unicode digit, not ASCII
    ("C1\n", "'\\n'"),
    ("C\x001", "'\\x00'"),
    (" C1", "' '"),
])
def test_unsafe_codes_are_refused_with_a_clear_message(code, fragment):
    with pytest.raises(UnsafeFileNameError) as info:
        validate_customer_code(code)
    assert fragment in str(info.value)
    assert "CustomerCode" in str(info.value)


def test_non_string_is_refused():
    with pytest.raises(UnsafeFileNameError, match="string"):
        validate_customer_code(None)


@pytest.mark.parametrize("code, device", [
    ("CON", "CON"), ("con", "CON"), ("Prn", "PRN"), ("AUX", "AUX"), ("nul", "NUL"),
    ("COM1", "COM1"), ("com9", "COM9"), ("LPT1", "LPT1"), ("lpt9", "LPT9"), ("COM0", "COM0"),
    ("con.txt", "CON"), ("NUL.1", "NUL"), ("aux.tar.gz", "AUX"),
])
def test_windows_device_names_are_refused(code, device):
    """``CON.xml`` on a Windows-backed server is the console, not a file (SPEC §6)."""
    with pytest.raises(UnsafeFileNameError) as info:
        validate_customer_code(code)
    message = str(info.value)
    assert f"CustomerCode {code!r}" in message and "not a safe file name" in message
    assert f"Windows device {device}" in message and f"{code}.xml" in message


@pytest.mark.parametrize("code", ["CONSOLE", "CON1", "COM10", "LPT", "XCON", "NULL", "C.CON", "_NUL", "COM-1"])
def test_names_that_only_resemble_a_device_pass(code):
    assert validate_customer_code(code) == code
