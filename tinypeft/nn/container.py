"""Containers that register what they hold: ModuleList, ModuleDict, ParameterDict, Sequential.

A plain Python list of layers is invisible to parameters() and state_dict(); these are not. Their
children are named by position ("h.0", "h.1") or key, the names checkpoints use.
"""
from collections import OrderedDict

from .module import Module


class _ListContainer(Module):
    """What ModuleList and Sequential share: children in order, counted, iterated and appended by position."""

    def _position(self, idx):
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range")
        return idx % n

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self


class ModuleList(_ListContainer):
    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, idx):
        return str(self._position(idx))

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return self._modules[self._index(idx)]

    def __setitem__(self, idx, module):
        self.add_module(self._index(idx), module)

    def __delitem__(self, idx):
        items = list(self._modules.values())
        del items[idx]
        self._modules.clear()
        self.extend(items)  # renumber, so names stay 0..n-1 as torch does

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        items = list(self._modules.values())
        items.insert(index, module)
        self._modules.clear()
        self.extend(items)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward: iterate over it and call each module.")

    def __repr__(self):
        """As torch: runs of identical children print once, "(0-11): 12 x GPT2Block(...)"."""
        if len(self) == 0:
            return "ModuleList()"
        runs = []  # [first index, last index, repr]
        for i, module in enumerate(self):
            r = repr(module)
            if runs and runs[-1][2] == r:
                runs[-1][1] = i
            else:
                runs.append([i, i, r])
        lines = [
            (f"({a}): " if a == b else f"({a}-{b}): {b - a + 1} x ") + r.replace("\n", "\n  ") for a, b, r in runs
        ]
        return "ModuleList(\n  " + "\n  ".join(lines) + "\n)"


class _KeyedContainer(Module):
    """A dict-like view of one of Module's registries (its children, or its own parameters)."""

    _registry = "_modules"

    def __init__(self, items=None):
        super().__init__()
        if items is not None:
            self.update(items)

    def _items(self):
        return self.__dict__[self._registry]

    def __getitem__(self, key):
        return self._items()[key]

    def __delitem__(self, key):
        del self._items()[key]

    def __contains__(self, key):
        return key in self._items()

    def __len__(self):
        return len(self._items())

    def __iter__(self):
        return iter(self._items())

    def keys(self):
        return self._items().keys()

    def values(self):
        return self._items().values()

    def items(self):
        return self._items().items()

    def pop(self, key):
        return self._items().pop(key)

    def get(self, key, default=None):
        return self._items().get(key, default)

    def update(self, items):
        for key, value in (items.items() if hasattr(items, "items") else items):
            self[key] = value

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward: pick an entry by key.")


class ModuleDict(_KeyedContainer):
    def __setitem__(self, key, module):
        self.add_module(key, module)


class Sequential(_ListContainer):
    """Sequential(a, b, c)(x) == c(b(a(x))); Sequential(OrderedDict(name=module)) names the children."""

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for key, module in args[0].items():
                self.add_module(key, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[self._position(idx)]

    def forward(self, input):
        for module in self:
            input = module(input)
        return input


class ParameterDict(_KeyedContainer):
    """Parameters by key (torch.nn.ParameterDict): `d[key]` is registered as parameter `key`."""

    _registry = "_parameters"

    def __setitem__(self, key, value):
        self.register_parameter(key, value)
