"""Model implementations of the roles in `curation.roles` for the ``paper`` profile.

Every module here imports its heavy library (torch, transformers, openai,
faster-whisper, llama-cpp-python, the ImageBind code) inside the functions
that need it, so that ``import curation.models.<module>`` works on the base
install and the ``cpu`` profile never pays for them.

* `curation.models.videollava`: Video-LLaVA captioner (Algorithm 1, line 6).
* `curation.models.condenser`: what every condenser (line 7) shares: errors,
  prompt, answer cleaning, disk cache, fallback chain;
  `curation.models.condenser_openai` the OpenAI-compatible one (retries, a
  concurrency limit, a circuit breaker) and `curation.models.condenser_offline`
  the llama.cpp and extractive ones.
* `curation.models.whisper`: faster-whisper transcriber (beyond the paper).
* `curation.models.imagebind`: the ImageBind model (loading, embedder);
  `curation.models.imagebind_preprocess` its inputs, and
  `curation.models.imagebind_aligner` the aligner that turns its embeddings
  into Algorithm 1's scores and the task labels (lines 10-27).
"""
