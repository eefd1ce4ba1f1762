"""python -m tinypeft.course --write-headers: rewrite every tutorial's header from the manifest."""
import sys

from .files import tutorials_dir
from .manifest import write_headers

if sys.argv[1:] != ["--write-headers"]:
    sys.exit("usage: python -m tinypeft.course --write-headers")
write_headers(tutorials_dir())
