"""Stage 3b: render the executed book with Jupyter Book (website, PDF) and export the
executed, Colab-ready notebooks."""
