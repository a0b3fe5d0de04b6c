"""Test equipment that ships with the package, so the tests, the benchmarks, the demo and
someone debugging by hand build the same inputs and ask the same questions.

Inputs: ``samples`` (videos made from photos bundled in installed packages, what the demo
runs), ``corpus`` (awkward and broken videos for split_frames), ``scenes``, ``crowd`` and
``line_scenes`` (generated scenes with their exact truth, for the tracker and the counting).
Probes: ``faults`` (errors injected into the local stack's calls), ``calls`` (which AWS calls
each stage makes, against its IAM role) and ``localcheck`` (what a local stack holds after a
run: rows, error records, dead letters). Never deployed (serverless.yml's allow-list).
"""
