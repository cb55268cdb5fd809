"""The reference implementations' inputs, computed in the reference virtualenv (``.venv-ref``, `make setup-test`).

Run as ``python tests/upstream_reference.py REQUEST.npz ANSWER.npz`` by
``tests/test_models_parity.py``; it imports nothing from this project. The
request holds what the project's code saw (decoded audio, window cuts,
frames, file paths); the answer holds what upstream's code makes of it:

* ``mel``: ImageBind's audio input from ``imagebind.data.waveform2melspec``
  and its Normalize, on each cut of the clip's 16-kHz audio (upstream cuts
  ``waveform[:, int(start * sr) : int(end * sr)]``, inside the audio);
* ``vision``: ImageBind's video input as ``load_and_transform_video_data``
  makes it from decoded frames: ``/ 255``, pytorchvideo's
  ``ShortSideScale(224)``, ``NormalizeVideo``, ``SpatialCrop(224, 3)``;
* ``reference_audio``: the file's audio as upstream reads it: channel 0 at
  the file's rate (PyAV, as ``torchaudio.load`` decodes through FFmpeg),
  resampled to 16 kHz by ``torchaudio.functional.resample``;
* ``videollava``: ``VideoLlavaVideoProcessor``'s ``pixel_values_videos``
  (the processor ``VideoLlavaProcessor`` uses) on the sampled frames.

The installed wheels do not all load as packages here: torchvision's and
torchaudio's compiled extensions are built for other torch builds (CUDA,
torch 2.11), and pytorchvideo 0.1.5 imports a torchvision module that was
renamed. Their pure-Python parts are what upstream's preprocessing uses,
so each package is registered bare (its ``__init__``, which loads the
extension, never runs) and the renamed module is aliased.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import numpy as np


def bare_package(name: str, **attributes: object) -> None:
    """Register ``name`` as a package pointing at its installed folder, without running its ``__init__``."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"reference: {name} is not installed (make setup-test builds .venv-ref)")
    package = types.ModuleType(name)
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__, package.__file__ = spec, spec.origin
    package.__dict__.update(attributes)
    sys.modules[name] = package


def load_references() -> types.SimpleNamespace:
    from importlib.metadata import version

    bare_package("torchvision", __version__=version("torchvision"))
    bare_package("torchaudio", __version__=version("torchaudio"))
    bare_package("torchaudio.functional")
    extension = types.ModuleType("torchaudio._extension")
    extension._IS_TORCHAUDIO_EXT_AVAILABLE = False  # filtering.py asks; resample and kaldi.fbank are pure torch
    sys.modules["torchaudio._extension"] = extension
    import torchaudio.compliance.kaldi  # noqa: F401 - imagebind.data calls torchaudio.compliance.kaldi.fbank
    import torchaudio.functional.functional as audio_functional

    sys.modules["torchaudio"].compliance = sys.modules["torchaudio.compliance"]
    sys.modules["torchaudio"].functional = sys.modules["torchaudio.functional"]
    sys.modules["torchaudio.functional"].resample = audio_functional.resample
    sys.modules["torchvision.transforms.functional_tensor"] = importlib.import_module(
        "torchvision.transforms._functional_tensor"
    )  # pytorchvideo 0.1.5 imports the module by its old name
    bare_package("pytorchvideo.data")  # its __init__ imports every dataset (fvcore, ...); data.py needs none of them
    from pytorchvideo import transforms as pv_transforms
    from torchvision import transforms
    from transformers import VideoLlavaVideoProcessor

    timm_layers = types.ModuleType("timm.layers")  # multimodal_preprocessors imports it; the tokenizer does not use it
    timm_layers.trunc_normal_ = timm_layers.DropPath = None
    sys.modules.update({"timm": types.ModuleType("timm"), "timm.layers": timm_layers})
    bare_package("imagebind")
    try:
        import imagebind.data as data
    finally:
        del sys.modules["timm"], sys.modules["timm.layers"]

    return types.SimpleNamespace(
        data=data, pv=pv_transforms, transforms=transforms, resample=audio_functional.resample,
        video_processor=VideoLlavaVideoProcessor,
    )  # fmt: skip


def imagebind_mel(ref: types.SimpleNamespace, audio: np.ndarray, firsts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    import torch

    normalize = ref.transforms.Normalize(mean=-4.268, std=9.138)  # load_and_transform_audio_data's defaults
    out = []
    for first, length in zip(firsts.tolist(), lengths.tolist(), strict=True):
        waveform = torch.as_tensor(audio[None, first : first + length].copy())
        out.append(normalize(ref.data.waveform2melspec(waveform, 16000, 128, 204)).numpy())
    return np.stack(out)


def imagebind_vision(ref: types.SimpleNamespace, pairs: np.ndarray) -> np.ndarray:
    import torch

    transform = ref.transforms.Compose(
        [
            ref.pv.ShortSideScale(224),
            ref.data.NormalizeVideo(mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711)),
        ]
    )  # load_and_transform_video_data's video_transform
    clips = []
    for pair in pairs:  # (2, H, W, 3) uint8; pytorchvideo's decoders give float (C, T, H, W)
        video = torch.as_tensor(pair).permute(3, 0, 1, 2).to(torch.float32)
        clips.append(transform(video / 255.0))
    return torch.stack(ref.data.SpatialCrop(224, num_crops=3)(clips)).numpy()


def upstream_audio(ref: types.SimpleNamespace, path: str) -> np.ndarray:
    """Channel 0 of the file's first audio stream at its own rate, resampled to 16 kHz as upstream does."""
    import av
    import torch

    with av.open(path) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=stream.rate)
        chunks = [out.to_ndarray() for frame in container.decode(stream) for out in resampler.resample(frame)]
        rate = stream.rate
    waveform = torch.as_tensor(np.concatenate(chunks, axis=1))
    if rate != 16000:
        waveform = ref.resample(waveform, orig_freq=rate, new_freq=16000)
    return waveform[0].numpy()


def videollava_pixels(ref: types.SimpleNamespace, videos: np.ndarray) -> np.ndarray:
    processor = ref.video_processor()  # Video-LLaVA-7B-hf's preprocessing: the class defaults
    return processor(videos=list(videos), return_tensors="pt")["pixel_values_videos"].numpy()


def main(request_path: str, answer_path: str) -> None:
    ref = load_references()
    request = np.load(request_path, allow_pickle=False)
    answer: dict[str, np.ndarray] = {}
    for key in request.files:
        name, _, index = key.partition(":")
        if name == "audio":
            answer[f"mel:{index}"] = imagebind_mel(
                ref, request[key], request[f"firsts:{index}"], request[f"lengths:{index}"]
            )
        elif name == "pairs":
            answer[f"vision:{index}"] = imagebind_vision(ref, request[key])
        elif name == "path":
            answer[f"reference_audio:{index}"] = upstream_audio(ref, str(request[key]))
        elif name == "videos":
            answer[f"videollava:{index}"] = videollava_pixels(ref, request[key])
    np.savez(answer_path, **answer)


if __name__ == "__main__":
    main(*sys.argv[1:3])
