"""How a run's clips get captioned: here, by one model (`local`), or on a Ray cluster (`ray`).

An engine is a class with an `Options` type of its own (a frozen dataclass; `CaptionRun.engine_options`
holds one), made with those options and, for the local engine, a model already loaded, if any. Its
`records` loads what it needs, fits the job to the model's frame side, says when it is ready (`ready`,
which starts the run's clock) and each batch size in use (`batch_size`, lower after running out of
memory), and yields one record per clip. `ENGINES` names them; `CaptionRun.engine` picks one;
`engine_options` builds an engine's options from text, as a command line gives them. A new engine is a
module with its class and its options, and one line in `ENGINES`.
"""

from __future__ import annotations

import contextlib
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..errors import OptionsError
from .ray_engine import RayEngine

if TYPE_CHECKING:
    from ..model.loading import LoadedModel
    from .captioning import CaptionJob
    from .records import CaptionRecord


class Engine(Protocol):
    """What a run asks of an engine."""

    def records(
        self,
        job: CaptionJob,
        paths: Sequence[str],
        ready: Callable[[], None],
        batch_size: Callable[[int], None],
    ) -> Iterator[CaptionRecord]:
        """One record per path: in order (local) or as they finish (Ray)."""


class EngineType(Protocol):
    """An engine's class: its options' type, and how it is made from them."""

    Options: type

    def __call__(self, options: Any, model: LoadedModel | None = None) -> Engine: ...


@dataclass(frozen=True)
class LocalOptions:
    """The local engine has no options of its own: the job says everything (workers, batch size)."""


class LocalEngine:
    """One model in this process; decoding threads stay ahead of it (`captioning.caption_clips`)."""

    Options: ClassVar[type] = LocalOptions

    def __init__(self, options: LocalOptions, model: LoadedModel | None = None) -> None:
        self.model = model

    def records(
        self,
        job: CaptionJob,
        paths: Sequence[str],
        ready: Callable[[], None],
        batch_size: Callable[[int], None],
    ) -> Iterator[CaptionRecord]:
        from ..model.compiling import for_caption
        from ..model.loading import load, load_fitted
        from .answering import Answerer
        from .captioning import caption_clips

        options = for_caption(job.model, job.planned_tokens(len(paths)))
        model, sampling = load_fitted(options, job.sampling, lambda options: self.model or load(options))
        job = replace(job, sampling=sampling)
        answerer = Answerer(model, job.generation, job.batch_size)
        ready()
        for record in caption_clips(model, job, paths, answerer):
            batch_size(answerer.batch_size)
            yield record


ENGINES: dict[str, EngineType] = {"local": LocalEngine, "ray": RayEngine}


def engine_options(engine: str, values: Mapping[str, str] | None = None) -> Any:
    """The options of `engine`, each field named in `values` read from its text by the field's type.

    "4" is an int for an int field; "none" or "" is None where the field takes None. Raises OptionsError
    (naming `engine_options`) for an unknown engine or option, or a value of the wrong kind or range.
    """
    if engine not in ENGINES:
        raise OptionsError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}.", "engine")
    kind = ENGINES[engine].Options
    hints, known = typing.get_type_hints(kind), [f.name for f in fields(kind)]
    values = values or {}
    if unknown := [name for name in values if name not in known]:
        takes = f"it takes {', '.join(known)}" if known else "it takes none"
        raise OptionsError(f"the {engine} engine has no option {unknown[0]!r}: {takes}.", "engine_options")
    try:
        return kind(**{name: _typed(name, text, hints[name]) for name, text in values.items()})
    except OptionsError as error:
        raise OptionsError(f"the {engine} engine's {error}", "engine_options") from error


BOOLEANS = {
    "true": True,
    "yes": True,
    "on": True,
    "1": True,
    "false": False,
    "no": False,
    "off": False,
    "0": False,
}


# What a field's type takes, in words
KINDS = {int: "a whole number", float: "a number", bool: "true or false"}


def _typed(name: str, text: str, hint: Any) -> Any:
    """`text` as a value of the type `hint` (str, int, float or bool, or one of them or None)."""
    kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    word = text.strip().lower()
    if type(None) in kinds and word in ("", "none"):
        return None
    kind = next(k for k in kinds if k is not type(None))
    if kind is bool and word in BOOLEANS:
        return BOOLEANS[word]
    if kind is not bool:
        with contextlib.suppress(ValueError):
            return kind(text)
    raise OptionsError(
        f"option {name} must be {KINDS.get(kind, kind.__name__)}, got {text!r}.", "engine_options"
    )
