"""PatchNCE (Park et al., ECCV 2020): the contrastive loss of `--model cut`, and its projection head `--netF`.

The generator's encoder features of an input and of its translation are sampled at the same positions
(`sample_patch_ids`); the head (`PatchSampleF`) turns each sampled feature vector into a unit vector,
through a small MLP per layer for `mlp_sample`; `patch_nce_loss` then asks each output patch to be
closer to the input patch at its own position than to the input's other patches.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

NETF_CHOICES = ("mlp_sample", "sample")
# The official code's logit for a query's own key among its negatives: exp(-10 / T) is about 0, so
# the positive is counted once, in its own column.
MASKED_LOGIT = -10.0


def patch_nce_loss(queries, keys, images, temperature, negatives_from_minibatch=False):
    """The PatchNCE loss of every query patch (a tensor of `queries.shape[0]` values, in fp32).

    queries, keys: (images * P, C) unit vectors, image-major (P patches of the first image, then of
    the second, ...): the output's patches and the input's at the same positions (keys are treated
    as constants: no gradient reaches them); images: how many images they come from; temperature:
    tau (--nce_T); negatives_from_minibatch: the negatives of a query are the keys of every image of
    the batch rather than of its own image only.

    Query i's logits are [q_i . k_i, q_i . k_j for the keys j of its group], divided by tau, where
    the entry of its own key among the negatives is set to MASKED_LOGIT; its loss is the
    cross-entropy with the positive (class 0) as the right answer.
    """
    queries, keys = queries.float(), keys.detach().float()
    groups = 1 if negatives_from_minibatch else images
    dim = queries.shape[1]
    positives = (queries * keys).sum(1, keepdim=True)
    grouped_queries, grouped_keys = queries.reshape(groups, -1, dim), keys.reshape(groups, -1, dim)
    negatives = torch.bmm(grouped_queries, grouped_keys.transpose(1, 2))
    own_key = torch.eye(negatives.shape[1], dtype=torch.bool, device=negatives.device)
    negatives = negatives.masked_fill(own_key, MASKED_LOGIT).flatten(0, 1)
    logits = torch.cat([positives, negatives], 1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device), reduction="none")


def sample_patch_ids(features, num_patches):
    """For each feature map of `features` (N, C, H, W), `num_patches` distinct positions (all of them
    when it has fewer), drawn from torch's CPU random generator (so seeded runs repeat and resumed
    runs continue in step); the same positions serve every image of the batch, and the output's
    features as well as the input's."""
    ids = []
    for feature in features:
        positions = feature.shape[2] * feature.shape[3]
        ids.append(torch.randperm(positions)[:num_patches].to(feature.device))
    return ids


def l2_normalise(x):
    """Each row of `x` divided by its length (plus 1e-7, as the official code does). The length's
    gradient at a zero row is 0 here, where the official square root makes it NaN (a row of zeros
    comes out of an MLP whose ReLUs are all off for that patch)."""
    return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + 1e-7)


class PatchSampleF(nn.Module):
    """The projection head: the feature vectors at the sampled positions, as unit vectors.

    channels: the channel count of each feature map it will see (the generator's, see
    CUTResnetGenerator.feature_channels), one MLP `mlp_<i>` = Linear(channels[i], nc), ReLU,
    Linear(nc, nc) per map (`mlp_sample`, parameter names as in the official code); empty for
    `sample`, which only normalises the sampled vectors. nc: the MLPs' width (--netF_nc).
    The official code creates the MLPs at the first batch, from the features it meets; these are
    the same sizes, known from the generator's layers, so the head and its optimiser exist before a
    training state is loaded into them.
    """

    def __init__(self, channels=(), nc=256):
        super().__init__()
        self.mlps = len(channels)
        for index, width in enumerate(channels):
            setattr(self, f"mlp_{index}", nn.Sequential(nn.Linear(width, nc), nn.ReLU(), nn.Linear(nc, nc)))

    def forward(self, features, patch_ids):
        """features: feature maps (N, C_i, H_i, W_i); patch_ids: positions per map (sample_patch_ids).
        Returns per map an (N * P_i, nc or C_i) tensor of unit vectors, image-major."""
        sampled = []
        for index, (feature, ids) in enumerate(zip(features, patch_ids)):
            # Sampled from (N, C, H * W), not from the official channels-last view (N, H * W, C): its
            # gradient would reach the generator laid out channels-last, and the CPU backward of
            # instance norm gets such gradients wrong for a batch of one image (PyTorch 2.14).
            patches = feature.flatten(2)[:, :, ids].transpose(1, 2).flatten(0, 1)
            if self.mlps:
                patches = getattr(self, f"mlp_{index}")(patches)
            sampled.append(l2_normalise(patches))
        return sampled
