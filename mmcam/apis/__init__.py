from .model_loader import InputError, LoadedModel, Sample, find_module, read_image

__all__ = ['InputError', 'LoadedModel', 'Sample', 'find_module', 'read_image']
