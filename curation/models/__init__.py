"""Model implementations of the roles in `curation.roles`: the ``paper`` profile's, and the ``cpu`` profile's small ones.

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

The ``cpu`` profile's models, all inside PyPI wheels: `curation.models.speech`
(Silero VAD) and `curation.models.faces` (mediapipe's face detection and
FaceMesh), used by `curation.cue_aligner`.
"""

CPU_MODELS_MISSING = (
    "the cpu profile's models are not installed (make setup-cpu, or pip install 'acav1m[cpu]' and "
    "pip install --no-deps mediapipe==0.10.14)"
)
"""The error a cpu-profile model raises when its wheel is missing: what to install, not only what failed."""
