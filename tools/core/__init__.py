"""Stage 0, the ground every stage stands on: the table of contents, MyST notebooks as
cells with line numbers, IPython code as Python, problems with file and line, files."""
