"""vidsift: find people and faces in recorded video, on AWS or on a local stack."""

__version__ = "0.1.0"
