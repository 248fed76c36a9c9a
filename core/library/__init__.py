"""The case library: de-identified images with confirmed labels (``cases`` table + a pixel
store). See :mod:`core.library.cases` (add, read, remove), :mod:`core.library.importer`
(folder import) and :mod:`core.library.store` (where pixels live)."""
