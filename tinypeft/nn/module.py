"""Module and Parameter: torch.nn's way of keeping a model's tensors in a tree of named parts.

Assigning a Parameter or a Module to an attribute registers it (Module.__setattr__), so the tree can
be walked: named_parameters() gives the dotted names a checkpoint uses ("h.0.attn.c_attn.weight"),
state_dict()/load_state_dict() save and fill them, train()/eval() flip every part's .training.
A weight shared by two modules (tied embeddings) is one object under two names; walks that build an
optimiser or count parameters see it once.
"""
from collections import OrderedDict, namedtuple

import numpy as np

from .. import backend
from ..tensor import Tensor
from .init import Unallocated

_RAW = Tensor.data  # the slot that holds a tensor's array; Parameter guards access to it


class Parameter(Tensor):
    """A Tensor that a Module registers as learnable. requires_grad is True unless asked otherwise.

    A parameter made under init_empty_weights() holds an Unallocated placeholder: shape, dtype and
    numel() work, reading .data raises, and assigning .data (loading a checkpoint) gives it storage."""

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        raw = _RAW.__get__(data) if isinstance(data, Tensor) else data  # shares memory, as torch does
        if not isinstance(raw, Unallocated):
            raw = backend.xp_of(raw).asarray(raw) if hasattr(raw, "dtype") else Tensor(raw).data  # lists: default dtype
        super().__init__(np.empty(0), requires_grad=False)  # sets the other slots (grad, _ctx, ...)
        _RAW.__set__(self, raw)  # directly: Tensor.__init__ would convert, and a placeholder refuses that
        self.requires_grad_(requires_grad)

    @property
    def data(self):
        raw = _RAW.__get__(self)
        if isinstance(raw, Unallocated):
            raise raw.error()
        return raw

    @data.setter
    def data(self, value):
        _RAW.__set__(self, value.data if isinstance(value, Tensor) else value)

    # facts that a placeholder can answer
    shape = property(lambda self: _RAW.__get__(self).shape)
    dtype = property(lambda self: _RAW.__get__(self).dtype)
    ndim = property(lambda self: len(_RAW.__get__(self).shape))
    # a placeholder has no storage yet; it will be filled on the CPU by a checkpoint load
    device = property(lambda self: "cpu" if isinstance(_RAW.__get__(self), (np.ndarray, Unallocated)) else "cuda")

    def numel(self):
        return int(_RAW.__get__(self).size)

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def is_allocated(self):
        return not isinstance(_RAW.__get__(self), Unallocated)

    def __repr__(self):
        if not self.is_allocated():
            return f"Parameter(shape={self.shape}, dtype={self.dtype}, unallocated)"
        return f"Parameter containing:\n{super().__repr__()}"

    def __reduce_ex__(self, protocol):
        # copy.deepcopy and pickle: the slot-based default would read .data, which a placeholder refuses
        return (_rebuild_parameter, (_RAW.__get__(self), self.requires_grad, self.grad), self.__dict__)


def _rebuild_parameter(raw, requires_grad, grad):
    p = Parameter(raw, requires_grad)
    p.grad = grad
    return p


_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _to_dtype_or_device(arg):
    """Module.to's argument: ("device", "cuda") or ("dtype", np.dtype). tinypeft.float32 is the string "float32"."""
    if isinstance(arg, str) and (arg == "cpu" or arg.startswith("cuda")):
        return "device", arg
    return "dtype", np.dtype(arg)


class Module:
    """Base class of every layer and model: subclasses set parts in __init__ and define forward()."""

    def __init__(self):
        d = self.__dict__  # plain dict writes: __setattr__ needs these to exist first
        d["training"] = True
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent_buffers_set"] = set()
        d["_modules"] = OrderedDict()

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- registration --------------------------------------------------------------------------------------
    def _check_init(self, name):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() call")

    def register_parameter(self, name, param):
        self._check_init("parameters")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                "(tinypeft.nn.Parameter or None required)"
            )
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """A tensor that is state but not learnt (a mask, running stats). persistent=False keeps it out of
        state_dict()."""
        self._check_init("buffers")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' (Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name, module):
        self._check_init("submodules")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if "." in name or name == "":
            raise KeyError(f'module name can\'t contain ".", and can\'t be empty, got: {name!r}')
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name, value):
        parts = (self.__dict__.get("_parameters"), self.__dict__.get("_buffers"), self.__dict__.get("_modules"))

        def forget(name, keep=None):
            # like torch, replacing a module or parameter keeps its place in the registry (and in state_dict)
            for d in parts:
                if d is not None and d is not keep:
                    d.pop(name, None)
            self.__dict__.pop(name, None)

        if isinstance(value, Parameter):
            self._check_init("parameters")
            forget(name, keep=parts[0])
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            self._check_init("submodules")
            forget(name, keep=parts[2])
            self._modules[name] = value
        elif parts[0] is not None and name in parts[0]:
            self.register_parameter(name, value)  # None, or a TypeError naming what was expected
        elif parts[2] is not None and name in parts[2]:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' (Module or None expected)")
            self._modules[name] = None
        elif parts[1] is not None and name in parts[1]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' (Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # only called when normal lookup fails: look in the registries
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(registry, {}):
                del self.__dict__[registry][name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    # -- walking the tree ----------------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(dotted name, module) for self and every descendant, depth first; a shared module once."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry, prefix, recurse, remove_duplicate):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mod_prefix, module in modules:
            for name, t in getattr(module, registry).items():
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield mod_prefix + ("." if mod_prefix else "") + name, t

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(dotted name, parameter); a tied weight is yielded once, under the first name that reaches it."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    @property
    def dtype(self):
        """The dtype of the first floating-point parameter (float32 unless converted), as transformers'
        PreTrainedModel.dtype; None for a module without parameters."""
        first = next((p for p in self.parameters() if np.dtype(p.dtype).kind == "f"), None)
        return None if first is None else np.dtype(first.dtype)

    @property
    def device(self):
        """"cpu" (NumPy) or "cuda" (CuPy): where the first parameter lives, as transformers' model.device."""
        first = next(self.parameters(), None)
        return "cpu" if first is None else first.device

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target):
        module = self
        for item in target.split(".") if target else []:
            if item not in module._modules:
                raise AttributeError(f"{module._get_name()} has no attribute `{item}`")
            module = module._modules[item]
        return module

    def get_parameter(self, target):
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._parameters:
            raise AttributeError(f"`{name}` is not an nn.Parameter")
        return module._parameters[name]

    def apply(self, fn):
        """fn(module) for every descendant, children before parents (as torch), then self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # -- modes -----------------------------------------------------------------------------------------------
    def train(self, mode=True):
        """Set .training on self and all descendants (dropout reads it)."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    # -- saving and loading ----------------------------------------------------------------------------------
    def state_dict(self, *, destination=None, prefix="", keep_vars=False):
        """{dotted name: tensor} for parameters and persistent buffers, detached and sharing memory, in torch's
        order (own parameters, own buffers, then children). A tied weight appears under each of its names."""
        if destination is None:
            destination = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else Tensor._wrap(_RAW.__get__(p))
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else Tensor._wrap(_RAW.__get__(b))
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        return destination

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy values (Tensors or arrays) into the parameters and buffers of the same names, in place.

        Returns (missing_keys, unexpected_keys); with strict=True either being non-empty is an error. A shape
        mismatch is always an error. A placeholder from init_empty_weights() (or assign=True) takes a copy of
        the value in the parameter's dtype instead of being written into."""
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = _RAW.__get__(value) if isinstance(value, Tensor) else value
            if isinstance(value, Unallocated):
                errors.append(f'"{key}": the value in the state_dict is an unallocated placeholder.')
                continue
            if tuple(value.shape) != tuple(target.shape):
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(value.shape)} from checkpoint, "
                    f"the shape in current model is {tuple(target.shape)}."
                )
                continue
            raw = _RAW.__get__(target)
            if assign or isinstance(raw, Unallocated):
                xp = backend.default_xp() if isinstance(raw, Unallocated) else backend.xp_of(raw)
                _RAW.__set__(target, xp.array(value, dtype=raw.dtype))  # a copy: never alias the checkpoint
            else:
                raw[...] = backend.to_device(value, "cpu" if isinstance(raw, np.ndarray) else "cuda")
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {self._get_name()}:\n\t" + "\n\t".join(errors))
        return _IncompatibleKeys(missing, unexpected)

    # -- dtype, device, storage ------------------------------------------------------------------------------
    def _apply_to_arrays(self, fn):
        """Replace each parameter's, buffer's and grad's array by fn(array), keeping the objects (as torch)."""
        for module in self.modules():
            for t in list(module._parameters.values()) + list(module._buffers.values()):
                if t is None:
                    continue
                _RAW.__set__(t, fn(_RAW.__get__(t)))
                if t.grad is not None:
                    t.grad.data = fn(t.grad.data)
        return self

    def to(self, *args, dtype=None, device=None):
        """module.to(dtype), module.to("cuda"), or both; only floating tensors change dtype (as torch)."""
        for arg in args:
            kind, value = _to_dtype_or_device(arg)
            dtype, device = (value, device) if kind == "dtype" else (dtype, value)

        def convert(a):
            if dtype is not None and np.dtype(a.dtype).kind == "f":
                a = a.astype(dtype, copy=False)
            if device is not None and not isinstance(a, Unallocated):
                a = backend.to_device(a, device)
            return a

        return self._apply_to_arrays(convert)

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def half(self):
        return self.to(np.float16)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def to_empty(self, *, device=None, recurse=True):
        """Give every placeholder (init_empty_weights) uninitialised storage of its shape and dtype."""
        device = backend.get_device() if device is None else device
        targets = self.modules() if recurse else [self]
        for module in targets:
            for t in list(module._parameters.values()) + list(module._buffers.values()):
                if t is not None and isinstance(_RAW.__get__(t), Unallocated):
                    raw = _RAW.__get__(t)
                    _RAW.__set__(t, backend.to_device(np.empty(raw.shape, dtype=raw.dtype), device))
        return self

    def _materialize(self):
        """Storage for this module's own placeholders (not its children's), before an _init_weights fills them."""
        return self.to_empty(recurse=False)

    # -- printing --------------------------------------------------------------------------------------------
    def _get_name(self):
        return type(self).__name__

    def extra_repr(self):
        """What goes between the parentheses of this module's line in repr (its constructor arguments)."""
        return ""

    def __repr__(self):
        lines = [line for line in self.extra_repr().split("\n") if line]
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")  # indent the child's own tree
            lines.append(f"({name}): {child}")
        if not self._modules and len(lines) <= 1:
            return f"{self._get_name()}({lines[0] if lines else ''})"
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))
