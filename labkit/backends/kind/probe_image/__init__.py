"""The probe image's build context (Dockerfile + labkit_probe.py); importable so tests can test the script."""
