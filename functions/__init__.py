"""Lambda handlers, one per function in serverless.yml: each parses its event, calls its
stage service in vidsift/stages/ (which holds the work and calls the core), and reports
the failed records. No work lives here (tests/test_handlers_thin.py keeps each under 100
lines, and no stage module may import from this package)."""
