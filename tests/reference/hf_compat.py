"""Loading the public reference's classes with the transformers of today.

The reference's model classes were written for transformers 4.x. transformers 5.x's from_pretrained
reads `all_tied_weights_keys`, which PreTrainedModel.post_init() sets and which the reference's
__init__ never calls, so from_pretrained fails with "object has no attribute
'all_tied_weights_keys'". No reference class ties parameters by name (Avey-B's masked-LM head
reuses embed.weight inside forward; the decoder's head is wte in forward too), so an empty map is
exactly what post_init() would have computed. `loadable(cls)` returns the class with that one
attribute set after its own __init__; the class is otherwise the reference's own.
"""
from __future__ import annotations


def loadable(cls):
    class Loadable(cls):
        def __init__(self, config, *args, **kwargs):
            super().__init__(config, *args, **kwargs)
            if not hasattr(self, "all_tied_weights_keys"):
                self.all_tied_weights_keys = {}

    Loadable.__name__ = Loadable.__qualname__ = cls.__name__
    return Loadable
