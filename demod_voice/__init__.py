"""demod-voice: offline-first voice cloning and text-to-speech.

Importing the package is cheap on purpose: engines and their heavy libraries
(torch, coqui-tts, onnxruntime) are imported only by the code that uses them.
"""

__version__ = "0.2.0"

__all__ = ["__version__"]
