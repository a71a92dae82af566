"""Test configuration: 8 fake CPU devices so sharding is tested without accelerators, and a
persistent compilation cache shared by the xdist workers and the subprocesses tests start."""

import os
import sys

# Must happen before jax is imported anywhere.
os.environ.setdefault("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in os.environ["XLA_FLAGS"]:
  os.environ["XLA_FLAGS"] += " --xla_force_host_platform_device_count=8"
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # TensorFlow must not grab accelerators.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# Compiling is most of the suite's time on CPU, and the same programs come back run after run
# (and in every subprocess that trains). Keyed on the program, the flags and jax's version, so a
# stale entry is never used; `pytest --cache-clear` empties it. Set as environment variables so
# that `jaxres train` subprocesses inherit them.
_CACHE_SETTINGS = {
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.1",  # skip the many op-by-op compilations
    "JAX_COMPILATION_CACHE_MAX_SIZE": str(4 << 30),        # least recently used entries go first
}


def pytest_configure(config):
  cache = getattr(config, "cache", None)  # absent under -p no:cacheprovider
  default = (str(cache.mkdir("jax-compilation-cache")) if cache is not None
             else os.path.expanduser("~/.cache/jaxres/jax-test-cache"))
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", default)
  for key, value in _CACHE_SETTINGS.items():
    os.environ.setdefault(key, value)
  if "jax" in sys.modules:  # imported by a plugin before us: jax read its environment already
    import jax
    jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs",
                      float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
    jax.config.update("jax_compilation_cache_max_size",
                      int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]))

# Triton, which torchvision loads, crashes the process (SIGSEGV) when TensorFlow was imported
# before it: load it first, whichever order the test modules import them in.
try:
  import torchvision  # noqa: F401  pylint: disable=unused-import
except ImportError:  # the torch extra is optional
  pass
