"""Generated wire code (python proto/generate.py). Do not edit."""
