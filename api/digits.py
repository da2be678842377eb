"""Integers from untrusted text: ASCII digits only. `str.isdigit()` also accepts '²' or '٣',
which `int()` then refuses (a 500) or reads as another number."""


def ascii_digits(text: str, max_length: int) -> bool:
    """Whether `text` is 1 to `max_length` ASCII digits."""
    return 0 < len(text) <= max_length and text.isascii() and text.isdigit()
