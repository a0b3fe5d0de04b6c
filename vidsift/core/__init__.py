"""The pipeline's logic as plain Python: no AWS calls here, so it is easy to test."""
