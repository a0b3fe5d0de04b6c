"""The pipeline's logic as plain Python, so it is easy to test and reason about: no AWS
client, no environment (settings are handed in), and no import of vidsift.aws, the stages,
the CLI or the local stack (docs/architecture.md, which names the tests that enforce it)."""
