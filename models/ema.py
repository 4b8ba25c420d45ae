"""Exponential moving averages (EMA) of the generators' weights: the averaged generators of --ema_decay.

After every step of the generators' optimiser, each averaged copy moves towards the trained ("raw")
network: avg = d * avg + (1 - d) * raw for every parameter, while buffers (batch-norm running
statistics) are copied as they are. The decay warms up, d_n = min(D, (1 + n) / (10 + n)) with n the
updates made so far (0.1, 0.18, 0.25, ... until it reaches D), so the first updates nearly copy the raw
weights and an early average does not cling to the random initial weights. The update runs without
autograd, on the raw network's fp32 master weights (autocast under --amp leaves them fp32), from the
plain module inside any DDP or torch.compile wrapper; the copies themselves are never wrapped, so every
process of a torchrun job updates its copy identically from the identical raw weights.
"""
import copy

import torch

from .checkpoint import unwrap


def warmed_up_decay(decay, updates):
    """The decay of the next update: min(decay, (1 + updates) / (10 + updates))."""
    return min(decay, (1 + updates) / (10 + updates))


def averaged_copy(net):
    """A copy of the plain network inside `net` that autograd leaves alone, to hold the average."""
    average = copy.deepcopy(unwrap(net))
    # --compile puts the compiled forward of the raw network on the instance (models.base_model
    # build_network), and deepcopy keeps that very function: the copy would run the raw weights.
    vars(average).pop("forward", None)
    return average.requires_grad_(False)


class WeightAverage:
    """Averaged copies of some networks (the generators), updated from the trained networks.

    networks: name -> network (wrapped or not) to average, copied as they are now; decay: D of the
    update rule above, in [0, 1).
    """

    def __init__(self, networks, decay):
        self.decay = decay
        self.updates = 0
        self.networks = {name: averaged_copy(net) for name, net in networks.items()}

    @torch.no_grad()
    def update(self, networks):
        """Move each average towards the network of the same name in `networks` (name -> network)."""
        weight = 1 - warmed_up_decay(self.decay, self.updates)
        for name, average in self.networks.items():
            raw = unwrap(networks[name])
            for averaged, trained in zip(average.parameters(), raw.parameters()):
                averaged.lerp_(trained, weight)  # averaged + (1 - d) * (trained - averaged)
            for averaged, trained in zip(average.buffers(), raw.buffers()):
                averaged.copy_(trained)
        self.updates += 1

    @torch.no_grad()
    def restart(self, networks):
        """Start the averages afresh from `networks` (name -> network), warm-up included."""
        for name, average in self.networks.items():
            average.load_state_dict(unwrap(networks[name]).state_dict())
        self.updates = 0

    def state_dict(self):
        """The averages and the update count (the decay only for the record: the current flag's rules)."""
        return {"decay": self.decay, "updates": self.updates,
                "networks": {name: average.state_dict() for name, average in self.networks.items()}}

    def load_state_dict(self, state):
        """Restore what `state_dict()` returned; the decay stays this run's --ema_decay."""
        for name, average in self.networks.items():
            average.load_state_dict(state["networks"][name])
        self.updates = state["updates"]
