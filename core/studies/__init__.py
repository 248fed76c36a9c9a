"""Reader studies: design and statistics. ``design``: a study from stored cases (library or a
server folder); ``generate``: its condition images (the ``study_images`` job); ``results``:
which condition scored better, per reader time and consistency; ``agreement``: inter-reader
agreement (ICC, Krippendorff's alpha, weighted kappa) with plain-language readings;
``export``: ratings CSV, results JSON, printable HTML report. Tables and queries live in
``core.db.studies``."""
from __future__ import annotations
