"""npsloop: closes the Net Promoter Score loop.

The code lives in the repository's ``services/`` and ``shared/`` folders; this package
installs them under one import name, ``npsloop.services`` and ``npsloop.shared``
(the two entries beside this file link to those folders).
"""

__version__ = "0.1.0"
