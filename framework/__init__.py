"""framework: an open benchmarking framework for deep-learning optimizers and models.

Nothing heavy is imported here: `framework --help` and plugin listings must stay instant.
"""

__version__ = "0.1.0"
