"""The embedded local AWS and what runs a pipeline on it, never deployed.

The stack (``stack``): moto for S3/SQS/Firehose/DynamoDB (``moto_process``), our own
SageMaker-runtime and Rekognition endpoints with real offline models (``sagemaker_runtime``,
``rekognition``, ``face_analyzer``, the ``human`` sidecar) and a dispatcher playing Lambda
(``dispatcher``). On top of it, ``vidsift run``'s parts: ``runner`` (videos in through S3),
``bars`` (progress), ``results`` (the run copied out to a folder), ``warehouse`` (that
folder queried with DuckDB under Athena's table names) and ``visitors`` (who was seen,
kept across runs).
"""
