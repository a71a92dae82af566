"""Published weights by name: `ARCH.TAG` -> download, verify, cache, convert.

Example:
  >>> from jaxres import weights
  >>> weights.names()[:2]
  >>> entry = weights.get("r3d_18.kinetics400"); entry.metrics
"""

from jaxres.weights.registry import (CLASS_LISTS, CONVERTERS, WeightsEntry, get, names,
                                     read_class_list, register)
