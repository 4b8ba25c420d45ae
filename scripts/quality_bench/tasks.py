"""The benchmark's translation tasks: real photos as domain A, a known photographic transform of
them as domain B, so that every test output has an exact ground truth.

The photos, their random crops and the folders come from datasets/make_demo_dataset.py (the pictures
that ship inside scikit-image and scikit-learn; nothing is downloaded), as in the demo dataset. Each
task writes
  trainA/  random crops;      trainB/  transform(other random crops)   (unpaired)
  testA/   random crops;      testB/   transform(testA), file for file (same names)
so that test.py --metrics psnr,ssim finds each output's ground truth by its file name. Every task
uses the same crops; only the transform differs.
"""
import os

import numpy as np
from make_demo_dataset import winter_look, write_translation_set  # datasets/ is on the path
from PIL import Image

from engine.metric_collector import paired_scores
from metrics.registry import METRICS
from util.errors import UserError

WARM_GAMMAS = np.array([0.80, 0.95, 1.25])  # R, G, B tone curves x ** gamma: red lifted, blue pressed down
# The sepia toning matrix of the W3C filter-effects specification (rows: output R, G, B).
SEPIA = np.array([[0.393, 0.769, 0.189],
                  [0.349, 0.686, 0.168],
                  [0.272, 0.534, 0.131]])


def warm_tone(image):
    """A warm grade: per-channel tone curves x ** (0.80, 0.95, 1.25) on [0, 1] values. image: RGB PIL."""
    unit = np.asarray(image, dtype=np.float64) / 255.0
    return Image.fromarray(np.rint(255.0 * unit ** WARM_GAMMAS).astype(np.uint8))


def sepia_tone(image):
    """Sepia toning: every pixel's colour times the SEPIA matrix, clipped. image: RGB PIL."""
    toned = np.asarray(image, dtype=np.float64) @ SEPIA.T
    return Image.fromarray(np.clip(np.rint(toned), 0, 255).astype(np.uint8))


# name -> (transform from A to B, what it does)
TASKS = {
    "warm": (warm_tone, "warm tone curves: R x^0.80, G x^0.95, B x^1.25"),
    "winter": (winter_look, "the demo dataset's cool grade: saturation x0.4, contrast x0.8, brightness x1.15, "
                            "blue tint"),
    "sepia": (sepia_tone, "sepia toning (W3C sepia matrix): colour to brown monochrome"),
}


def parse_tasks(text):
    """The task names of a --tasks value ('warm,sepia'); UserError naming the valid ones for any other."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in TASKS]
    if unknown or not names:
        raise UserError(f"--tasks: unknown task {unknown[0] if unknown else text!r}; choose from "
                        f"{', '.join(TASKS)} (comma-separated, e.g. --tasks warm,sepia)")
    return list(dict.fromkeys(names))


def write_task(folder, name, crops):
    """Write task `name`'s dataset to folder/{trainA,trainB,testA,testB} from the shared `crops`
    (make_demo_dataset.draw_crops's)."""
    write_translation_set(folder, crops, TASKS[name][0])


def read_pictures(folder):
    """{file name: uint8 HxWx3 array} of the pictures in folder, in name order."""
    return {name: np.array(Image.open(os.path.join(folder, name)).convert("RGB"))
            for name in sorted(os.listdir(folder))}


def do_nothing_scores(folder, inception):
    """The scores of returning each test input unchanged: PSNR and SSIM of testA against its truth
    testB (mean over images, by the helper behind test.py's paired numbers and their baseline), FID and
    KID of testA against the testB set.

    folder: a task's dataset folder. inception: a metrics.inception.InceptionFeatures.
    """
    inputs, truths = read_pictures(os.path.join(folder, "testA")), read_pictures(os.path.join(folder, "testB"))
    names = sorted(inputs)
    truth_pictures, input_pictures = [truths[n] for n in names], [inputs[n] for n in names]
    scores = {name: float(np.mean(values))
              for name, values in paired_scores(("psnr", "ssim"), truth_pictures, input_pictures).items()}
    real_features = inception.features(truth_pictures)
    fake_features = inception.features(input_pictures)
    scores["fid"] = METRICS["fid"].function(real_features, fake_features)["value"]
    scores["kid"] = METRICS["kid"].function(real_features, fake_features)["value"]
    return scores
