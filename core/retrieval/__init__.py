"""Similar-case retrieval: classifier embeddings (:mod:`core.retrieval.embed`), a FAISS index
(:mod:`core.retrieval.index`), search over the case library (:mod:`core.retrieval.search`)
and its evaluation on image folders (:mod:`core.retrieval.evaluate`)."""
