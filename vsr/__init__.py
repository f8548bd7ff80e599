"""vsr: video super-resolution streaming pipeline.

Importing vsr pulls in nothing heavy: torch and TensorRT are imported lazily by the code that needs them.
"""

__version__ = "0.1.0"
