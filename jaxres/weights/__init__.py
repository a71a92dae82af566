"""Published weights by name: `ARCH.TAG` -> download, verify, cache, convert.

Example:
  >>> from jaxres import weights
  >>> weights.names()[:2]
  >>> weights.get("r3d_18.kinetics400").metrics
  >>> variables = weights.load_variables("r3d_18.kinetics400")   # downloads once, then cached
"""

from jaxres.weights.download import (
  MIRROR_VARIABLE,
  WeightsError,
  cache_dir,
  cached_file,
  fetch,
  import_file,
)
from jaxres.weights.load import convert_file, load_variables
from jaxres.weights.registry import (
  CLASS_LISTS,
  CONVERTERS,
  WeightsEntry,
  get,
  names,
  read_class_list,
  register,
)
