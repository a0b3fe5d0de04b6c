"""The embedded local AWS: moto for S3/SQS/Firehose/DynamoDB, our own SageMaker-runtime
and Rekognition endpoints with real offline models, and a dispatcher playing Lambda."""
