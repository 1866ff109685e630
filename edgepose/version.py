"""The package version and where its bundled files live (importable from every layer
without importing the package root, which offers the app layer's ``edgepose.load``)."""

from pathlib import Path

__version__ = "0.1.0"

# Bundled models and images (package data), wherever edgepose is installed.
ASSETS = Path(__file__).resolve().parent / "assets"
