"""The package version (importable from every layer without importing the package root,
which offers the app layer's ``edgepose.load``)."""

__version__ = "0.1.0"
