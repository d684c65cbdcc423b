"""The user-facing error type, in a module with no imports so every stage can raise it."""


class InputError(ValueError):
    """A user input (image, config, checkpoint, option) that mmcam cannot use."""
