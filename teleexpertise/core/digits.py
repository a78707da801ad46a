"""Numbers as typed: the ASCII digits 0 to 9 only."""


def ascii_digits(value: str) -> bool:
    """Whether `value` is one or more of the digits 0 to 9. `str.isdigit()` alone also takes "²", which `int()`
    refuses (a server error), and other scripts' digits, which `int()` reads as numbers that no identifier, date
    or header here is written in."""
    return value.isascii() and value.isdigit()
