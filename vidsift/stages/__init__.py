"""The services behind the stage handlers (functions/): each stage's work, with its AWS
calls through vidsift.aws and its decisions in vidsift.core."""
