"""Classes and functions built on base."""
from .base import Base, helper


class Child(Base):
    """Inherits value() from Base."""

    def name(self):
        return "child"


def scaled(x):
    """Calls helper()."""
    return helper(x) + 1
