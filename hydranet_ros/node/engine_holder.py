"""Owns the inference engine: loads it, rebuilds it in the background and swaps it atomically."""
import threading
from typing import Callable, Generic, Hashable, Optional, TypeVar

Engine = TypeVar('Engine')
Settings = TypeVar('Settings')
KeyOf = Callable[[Settings], Hashable]


class EngineHolder(Generic[Settings, Engine]):
    """The engine that serves frames, and at most one background rebuild at a time.

    ``factory(settings)`` builds a ready engine or raises; ``key_of(settings)`` tells whether
    two settings need different engines. A rebuild that fails leaves the serving engine in
    place and reports through ``on_failure``; one that succeeds is swapped in and reported
    through ``on_swap``. Requests made during a rebuild are coalesced: the newest wins.
    """

    def __init__(self, factory: Callable[[Settings], Engine], key_of: KeyOf,
                 on_swap: Callable[[Engine, Settings], None],
                 on_failure: Callable[[Settings, Exception], None]) -> None:
        self._factory = factory
        self._key_of = key_of
        self._on_swap = on_swap
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self._engine: Optional[Engine] = None
        self._settings: Optional[Settings] = None
        self._wanted: Optional[Settings] = None
        self._builder: Optional[threading.Thread] = None
        self._generation = 0
        self.last_error: Optional[str] = None

    @property
    def engine(self) -> Optional[Engine]:
        """The engine serving frames now (None before ``load`` and after ``release``)."""
        return self._engine

    @property
    def settings(self) -> Optional[Settings]:
        """The settings the serving engine was built with."""
        return self._settings

    @property
    def rebuilding(self) -> bool:
        """Whether a background rebuild is in progress."""
        builder = self._builder
        return builder is not None and builder.is_alive()

    def load(self, settings: Settings) -> Engine:
        """Build an engine now (blocking) and serve it; exceptions propagate."""
        engine = self._factory(settings)
        with self._lock:
            self._generation += 1
            self._engine, self._settings, self._wanted = engine, settings, None
            self.last_error = None
        return engine

    def request(self, settings: Settings) -> bool:
        """Rebuild in the background if ``settings`` need another engine; return True if so."""
        with self._lock:
            if self._engine is None:
                return False
            target_key = self._key_of(settings)
            pending = self._wanted if self._wanted is not None else self._settings
            if self._key_of(pending) == target_key:
                return False
            self._wanted = settings
            if self.rebuilding:
                return True
            generation = self._generation
            self._builder = threading.Thread(target=self._rebuild, args=(generation,),
                                             name='engine-rebuild', daemon=True)
            self._builder.start()
            return True

    def _rebuild(self, generation: int) -> None:
        while True:
            with self._lock:
                wanted = self._wanted
                if wanted is None or generation != self._generation:
                    self._wanted = None
                    return
                if self._key_of(wanted) == self._key_of(self._settings):
                    self._wanted = None
                    return
            try:
                engine = self._factory(wanted)
            except Exception as error:  # any failure keeps the old engine serving
                with self._lock:
                    self.last_error = str(error)
                    if self._wanted is wanted:
                        self._wanted = None
                self._on_failure(wanted, error)
                continue
            with self._lock:
                if generation != self._generation:
                    return
                self._engine, self._settings = engine, wanted
                self.last_error = None
                if self._wanted is wanted:
                    self._wanted = None
            self._on_swap(engine, wanted)

    def release(self) -> None:
        """Stop serving; a rebuild in progress is discarded when it ends."""
        with self._lock:
            self._generation += 1
            self._engine = None
            self._settings = None
            self._wanted = None

    def wait_idle(self, timeout_s: Optional[float] = None) -> bool:
        """Wait for a background rebuild to end; return False on timeout."""
        builder = self._builder
        if builder is None:
            return True
        builder.join(timeout_s)
        return not builder.is_alive()
