"""Depends on nothing."""


def answer():
    return 42
