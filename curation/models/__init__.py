"""Model implementations of the roles in `curation.roles` for the ``paper`` profile.

Every module here imports its heavy library (torch, transformers, openai,
faster-whisper, llama-cpp-python, the ImageBind code) inside the functions
that need it, so that ``import curation.models.<module>`` works on the base
install and the ``cpu`` profile never pays for them.

* `curation.models.videollava`: Video-LLaVA captioner (Algorithm 1, line 6).
* `curation.models.condenser`: OpenAI-compatible, llama.cpp and extractive
  condensers (line 7), with retries, a concurrency limit and a disk cache.
* `curation.models.whisper`: faster-whisper transcriber (beyond the paper).
* `curation.models.imagebind`: ImageBind embedder and the aligner that turns
  its embeddings into Algorithm 1's scores and the task labels (lines 10-27).
"""
