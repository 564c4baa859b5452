"""Repository-wide pytest set-up: the packages' doctests need what their modules import.

``training`` imports TensorFlow; on a survey-only install (``make survey``) its modules
cannot be collected for doctests, so they are left out there rather than failing. Under
``make test`` (which installs the training extras) they are collected like any test.
"""

from importlib.util import find_spec

collect_ignore_glob = [] if find_spec("tensorflow") is not None else ["training/*"]
