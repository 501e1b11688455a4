"""Jupyter-native access to Apache Linkis."""

__version__ = "0.1.0"
