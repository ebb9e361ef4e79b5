"""`python -m bench`: Feather side by side with a sharp (libvips) peer on the same jobs.

See ``bench/__main__.py`` for the options and README's Benchmarks section for the results.
"""
