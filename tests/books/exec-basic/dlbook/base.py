"""Base classes and helpers."""


def helper(x):
    """A helper that a saved function calls."""
    return 10 * x


class Base:
    """A base class."""

    def value(self):
        return 1
