"""jaxres: residual networks for video in JAX/Flax."""

__version__ = "0.1.0"
