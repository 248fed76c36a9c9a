"""Reader studies: design and statistics. ``agreement``: inter-reader agreement (ICC,
Krippendorff's alpha, weighted kappa) with plain-language readings."""
from __future__ import annotations
