"""The benchmark's configurations: one Config per performance setting (--amp, --channels_last,
--compile), read from --config texts or the product of the per-flag lists."""
import itertools
from dataclasses import dataclass

from runtime.device import AMP_CHOICES
from util.errors import UserError


@dataclass(frozen=True)
class Config:
    """One performance setting. amp: none, bf16 or fp16; channels_last, compile: the tool's flags."""

    amp: str = "none"
    channels_last: bool = False
    compile: bool = False

    @property
    def label(self):
        return f"amp={self.amp},channels_last={int(self.channels_last)},compile={int(self.compile)}"


def parse_config(text):
    """A Config from `amp=bf16,channels_last=1,compile=0` (keys left out keep their defaults)."""
    values = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key == "amp" and value in AMP_CHOICES:
            values[key] = value
        elif key in ("channels_last", "compile") and value in ("0", "1"):
            values[key] = value == "1"
        else:
            raise UserError(f"--config {text!r}: cannot read {item!r}; write e.g. amp=bf16,channels_last=1,compile=0 "
                            f"(amp one of {', '.join(AMP_CHOICES)}, the others 0 or 1)")
    return Config(**values)


def configurations(args):
    """The configurations to compare, in order, without repeats."""
    lists_given = any(value is not None for value in (args.amp, args.channels_last, args.compile))
    if args.config and lists_given:
        raise UserError("--config lists configurations explicitly; drop --amp/--channels_last/--compile or --config")
    if args.config:
        configs = [parse_config(text) for text in args.config]
    else:
        product = itertools.product(args.amp or ["none", "bf16"], args.channels_last or [0, 1], args.compile or [0])
        configs = [Config(amp, bool(channels_last), bool(compiled)) for amp, channels_last, compiled in product]
    return list(dict.fromkeys(configs))
