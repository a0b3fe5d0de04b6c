"""What runs on the deploy machine before anything is packaged (``plugins/deploy-checks.js``
runs ``python3 -m vidsift.deploy.checks``), never on Lambda.

Standard library and the 3.9-safe part of vidsift.core only: the deploy machine's own
python3 runs it, whatever its version (tests/test_deploy_python.py proves the closure).
"""
