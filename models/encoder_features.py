"""The encoder features of a CUT generator, which PatchNCE compares: the outputs of chosen layers of
the chain `feature_layers` (indices as `--nce_layers` gives them), by a pass that stops after the last
of them (`encode`) or collected during full forward passes (`capturing`), and their channel counts
(`feature_channels`, for the projection head).
"""
import contextlib


class EncoderFeatures:
    """Mixin of the CUT generators; the class defines `feature_layers` (an nn.Sequential) and `input_nc`."""

    def encode(self, x, layers):
        """The outputs of `layers` (ascending indices into `feature_layers`) for the input `x`, computing no
        layer after the last of them: the encoder features that PatchNCE compares."""
        features = []
        for index, layer in enumerate(self.feature_layers[: layers[-1] + 1]):
            x = layer(x)
            if index in layers:
                features.append(x)
        return features

    @contextlib.contextmanager
    def capturing(self, layers):
        """Within the block, every forward pass adds to the yielded list the outputs of `layers`
        (ascending indices into `feature_layers`; none when empty), detached: the features encode(x, layers)
        returns for the same input, without running the encoder again."""
        captured = []

        def keep(index):
            def hook(module, args, output):
                if index == layers[0]:
                    captured.append([])
                # encode() stops after the last layer; a full pass goes on, and an in-place layer next
                # (ReLU(True) after a norm) would change that output under our feet: keep a copy then.
                following = self.feature_layers[index + 1] if index + 1 < len(self.feature_layers) else None
                changed_next = index == layers[-1] and getattr(following, "inplace", False)
                captured[-1].append(output.detach().clone() if changed_next else output.detach())
            return hook
        handles = [self.feature_layers[index].register_forward_hook(keep(index)) for index in layers]
        try:
            yield captured
        finally:
            for handle in handles:
                handle.remove()

    def feature_channels(self, layers):
        """The channel counts of the outputs of `layers` (what encode(x, layers) returns): each
        layer keeps the channels it receives unless it is a convolution."""
        channels, found = self.input_nc, []
        for index, layer in enumerate(self.feature_layers):
            channels = getattr(layer, "out_channels", channels)
            if index in layers:
                found.append(channels)
        return found
