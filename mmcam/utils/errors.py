"""The user-facing error types, in a module with no imports so every stage can raise them."""


class InputError(ValueError):
    """A user input (image, config, checkpoint, option) that mmcam cannot use."""


class OptionError(InputError):
    """An option or layer that fails the same way for every image: a folder run stops at the
    first image instead of skipping them all."""
