"""Allowed ranges of numeric flags: declared once where each flag is defined, checked once after parsing.

A numeric flag is added with `type=NumberRange(int, minimum=1)` (or `float`, with `maximum`, `above`,
`below`, `infinite=True`). argparse converts the text with int or float as before (and refuses text
that is no number in its usual way); `check_ranges` then refuses a value outside the range, in one
line naming the flag, the value and the range:

    --batch_size 0 is out of range; it must be an integer >= 1

Checking after the parse rather than inside the conversion keeps argparse's usage text out of the
message, covers defaults that a model sets (`set_defaults`) as well, and lets options files be read
back with the same converter. `add_ranges_to_help` shows each range in --help.
"""
import math

from util.errors import UserError


class NumberRange:
    """The `type=` of a numeric flag: converts like `kind` and knows which values are allowed.

    kind: int or float; minimum/maximum: inclusive bounds; above/below: exclusive bounds (None: no
    bound); infinite: float('inf') is allowed too (e.g. "no limit"); values: the only values allowed,
    in place of bounds (e.g. (8, 16)). NaN and -inf are never allowed, inf only with infinite=True.
    """

    def __init__(self, kind, minimum=None, maximum=None, above=None, below=None, infinite=False, values=None):
        self.kind = kind
        self.__name__ = kind.__name__  # argparse names it in "invalid int value: 'x'"
        self.minimum, self.maximum, self.above, self.below = minimum, maximum, above, below
        self.infinite = infinite
        self.values = None if values is None else tuple(values)

    def __call__(self, text):
        return self.kind(text)

    def __contains__(self, value):
        if isinstance(value, float) and not math.isfinite(value):
            return self.infinite and value == math.inf
        if self.values is not None:
            return value in self.values
        return ((self.minimum is None or value >= self.minimum) and (self.maximum is None or value <= self.maximum)
                and (self.above is None or value > self.above) and (self.below is None or value < self.below))

    def describe(self):
        """The range in words, e.g. 'an integer >= 1', 'a number >= 0 and < 1', 'an integer from 1 to 65535',
        '8 or 16'."""
        if self.values is not None:
            *others, last = map(_text, self.values)
            return f"{', '.join(others)} or {last}" if others else last
        noun = "an integer" if self.kind is int else "a number"
        if self.minimum is not None and self.maximum is not None:
            return f"{noun} from {_text(self.minimum)} to {_text(self.maximum)}"
        signs = ((">=", self.minimum), (">", self.above), ("<=", self.maximum), ("<", self.below))
        bounds = [f"{sign} {_text(bound)}" for sign, bound in signs if bound is not None]
        words = f"{noun} {' and '.join(bounds)}" if bounds else f"any {'integer' if self.kind is int else 'number'}"
        return words + (" (or inf for no limit)" if self.infinite else "")


def _text(number):
    """A number as a user would type it: 1, 0.5, 1e-08, inf, nan."""
    return str(number) if isinstance(number, int) else f"{number:g}"


def ranged_actions(parser):
    """(flag, NumberRange, dest) of every flag of `parser` that declares a range."""
    return [(action.option_strings[0], action.type, action.dest) for action in parser._actions
            if isinstance(action.type, NumberRange)]


def check_ranges(opt, parser):
    """UserError naming the first flag of `parser` whose value in `opt` (typed or default) is out of its
    declared range. Flags left at None ("not set", e.g. --seed) are not checked."""
    for flag, allowed, dest in ranged_actions(parser):
        value = getattr(opt, dest, None)
        if value is not None and value not in allowed:
            raise UserError(f"{flag} {_text(value)} is out of range; it must be {allowed.describe()}")


def add_ranges_to_help(parser):
    """Append each declared range to its flag's --help text."""
    for action in parser._actions:
        if isinstance(action.type, NumberRange) and action.help:
            action.help = f"{action.help} [{action.type.describe()}]"
