"""vidsift-edge: the camera-side half of vidsift.

A recorder that turns a camera (or a video file) into short person-triggered clips, and a
durable uploader that moves clips into the pipeline's raw bucket without ever losing one:
every clip sits in a SQLite queue on local disk until S3 has confirmed it (checksum included).
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
