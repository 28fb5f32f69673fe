"""The command line, one thin module per command: parse the arguments, call a stage,
print and return the exit status (dispatch: :mod:`tools.cli`)."""
