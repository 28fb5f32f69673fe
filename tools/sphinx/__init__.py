"""Stage 4: the Sphinx extensions that Jupyter Book loads (``_config.yml``): offline
MathJax and PDF part numbering, execution notes and report, notebook downloads."""
