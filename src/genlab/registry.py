"""Name -> factory registries, filled by decorators (``@register_model("vae")``).

An unknown name raises a :class:`~genlab.errors.ConfigError` that lists the valid names, so a typo
on the command line reads as an answer rather than a ``KeyError``.
"""
from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T], dict[str, T]):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self and self[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self[name] = obj
            if isinstance(obj, type):
                obj.registry_name = name  # type: ignore[attr-defined]
            return obj

        return decorator

    def get(self, name: str) -> T:  # type: ignore[override]
        try:
            return self[name]
        except KeyError:
            valid = ", ".join(sorted(self)) or "(none registered)"
            raise ConfigError(f"unknown {self.kind} {name!r}; valid: {valid}") from None


MODELS: Registry[Any] = Registry("model")
DATASETS: Registry[Callable[..., Any]] = Registry("dataset")
FEATURE_EXTRACTORS: Registry[Callable[..., Any]] = Registry("feature extractor")

register_model = MODELS.register
register_dataset = DATASETS.register
register_feature_extractor = FEATURE_EXTRACTORS.register
# Keyed by model registry name. An evaluator is fn(model, test_data, **options) -> dict of metrics
# (used by `genlab evaluate`); a reporter is fn(model, run_dir, train_data, test_data) -> None and
# writes a family's figures into the run folder at the end of `genlab train`.
EVALUATORS: Registry[Callable[..., Any]] = Registry("evaluator")
REPORTERS: Registry[Callable[..., Any]] = Registry("reporter")
register_evaluator = EVALUATORS.register
register_reporter = REPORTERS.register


def build_model(name: str, config: Any = None) -> Any:
    """Instantiate a registered model from its name and a config object or plain dict. Every family
    is registered by then: importing any part of genlab runs ``genlab/__init__``, which imports
    ``genlab.models``."""
    cls = MODELS.get(name)
    if config is None:
        config = cls.config_class()
    elif isinstance(config, dict):
        config = cls.config_class.from_dict(config)
    return cls(config)
