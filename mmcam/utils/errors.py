"""The user-facing error types, in a module with no imports so every stage can raise them."""


class InputError(ValueError):
    """A user input (image, config, checkpoint, option) that mmcam cannot use."""


def first_line(err: BaseException, limit: int = 0) -> str:
    """The first line of an error's message (at most ``limit`` characters when given), or the
    name of its type when it has no message."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return line[:limit] if limit else line


class OptionError(InputError):
    """An option or layer that fails the same way for every image: a folder run stops at the
    first image instead of skipping them all."""
