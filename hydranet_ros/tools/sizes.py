"""Image sizes on the command line: always HEIGHTxWIDTH (``480x640``), the order of array shapes.

Older spellings are still read, with a note on stderr that says how to write them now: two
numbers ``H W`` (hydranet-eval ``--input-size``, hydranet-train ``--crop``) and the
WIDTHxHEIGHT ``--inference-size`` of hydranet-demo and the soak rig.
"""
import argparse
import re
import sys
from typing import Any, Optional, Sequence, Tuple

from ..engine.run_plan import MIN_INPUT_SIDE_PX

Size = Tuple[int, int]
_SIZE = re.compile(r'\s*(\d+)\s*[xX]\s*(\d+)\s*')


def size_text(height: int, width: int) -> str:
    """Return a size as the tools write it: ``HEIGHTxWIDTH``."""
    return f'{int(height)}x{int(width)}'


def parse_size(text: str, min_side_px: int = MIN_INPUT_SIDE_PX) -> Size:
    """Parse ``HxW`` into (height, width); raise ``argparse.ArgumentTypeError`` if it is not."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(f'expected HEIGHTxWIDTH such as 480x640, got {text!r}')
    height, width = int(match[1]), int(match[2])
    if min(height, width) < min_side_px:
        raise argparse.ArgumentTypeError(
            f'size {size_text(height, width)} is too small; both sides must be >= '
            f'{min_side_px} px')
    return height, width


def input_size(text: str) -> Size:
    """Parse a network input size ``HxW`` (e.g. ``480x640``) for argparse."""
    return parse_size(text)


def note(parser: argparse.ArgumentParser, text: str) -> None:
    """Print a deprecation note of a tool on stderr."""
    print(f'{parser.prog}: note: {text}', file=sys.stderr)


class SizeOrTwoNumbers(argparse.Action):
    """``--flag HxW``, or the deprecated ``--flag H W`` (read the same, with a note)."""

    def __init__(self, option_strings: Sequence[str], dest: str, min_side_px: int = 1,
                 **kwargs: Any) -> None:
        kwargs.setdefault('metavar', 'HxW')
        super().__init__(option_strings, dest, nargs='+', **kwargs)
        self.min_side_px = min_side_px

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        """Store (height, width) from one ``HxW`` or two numbers."""
        values = list(values)
        try:
            if len(values) == 1:
                size = parse_size(values[0], self.min_side_px)
            elif len(values) == 2 and all(v.strip().isdigit() for v in values):
                size = parse_size(f'{values[0]}x{values[1]}', self.min_side_px)
                note(parser, f'{option_string} {values[0]} {values[1]} (two numbers) is '
                             f'deprecated; write {option_string} {size_text(*size)} '
                             f'(HEIGHTxWIDTH)')
            else:
                raise argparse.ArgumentTypeError(
                    f'expected HEIGHTxWIDTH such as 480x640, got {" ".join(values)!r}')
        except argparse.ArgumentTypeError as error:
            parser.error(f'argument {option_string}: {error}')
        setattr(namespace, self.dest, size)


class DeprecatedWidthHeight(argparse.Action):
    """The old ``--inference-size WIDTHxHEIGHT``: stored as (height, width), with a note."""

    def __init__(self, option_strings: Sequence[str], dest: str, new_flag: str = '--input-size',
                 **kwargs: Any) -> None:
        kwargs.setdefault('metavar', 'WxH')
        super().__init__(option_strings, dest, **kwargs)
        self.new_flag = new_flag

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        """Store (height, width) from ``WxH``."""
        if not str(values).strip():
            return
        try:
            width, height = parse_size(str(values))
        except argparse.ArgumentTypeError:
            parser.error(f'argument {option_string}: expected WIDTHxHEIGHT such as 320x96, got '
                         f'{values!r} (better: {self.new_flag} HEIGHTxWIDTH)')
        note(parser, f'{option_string} WIDTHxHEIGHT is deprecated; write {self.new_flag} '
                     f'{size_text(height, width)} (HEIGHTxWIDTH, as every tool)')
        setattr(namespace, self.dest, (height, width))
