"""Descriptors shared by the model wrappers: a method that works on the class and on an instance."""
from __future__ import annotations


class instance_or_class_method:
    """Binds the function to the instance when called on one, else to the class (e.g. Model.weight_shapes(config)
    and model.weight_shapes())."""

    def __init__(self, fn):
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __get__(self, obj, cls=None):
        return self.fn.__get__(obj if obj is not None else cls)
