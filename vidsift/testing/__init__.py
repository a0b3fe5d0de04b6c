"""Test helpers that ship with the package: the bad-input corpus, used by tests/ and by hand."""
