"""Build system of *Deep Learning by Doing*: parse, extract, execute, render, check."""
