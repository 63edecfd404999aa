"""Swap a rebuilt read model in while the server keeps serving.

``civic projections rebuild NAME`` builds a new version of a read model into its
own file from the beginning of the stream and offers it (``views/NAME.ready``,
see :mod:`projections.view_files`). A :class:`ViewSwapper` in every process that
serves or feeds read models watches for that: it starts a runner on the new
version, lets it catch up with the live one, then replaces the runner in the
process's ``runners`` mapping — one dictionary assignment, so every read
afterwards sees the new version and no read sees a half-built one — stops the
old runner, moves the pointer and deletes the old file. Processes that did not
take the offer follow the pointer.

With the embedded stream the new runner catches up beside the old one (each
has its own subscription). With Kafka both would share one consumer group, so
the old runner stops first and reads serve its last state until the new one
has caught up to where the old one stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, MutableMapping
from pathlib import Path

import structlog

from infra.embedded_stream import EmbeddedStream
from projections import view_files
from projections.runner import ProjectionRunner

log = structlog.get_logger(__name__)

RunnerFactory = Callable[[str, Path], ProjectionRunner]


class ViewSwapper:
    """Watches the views directory and swaps rebuilt read models in, live."""

    def __init__(
        self,
        views_dir: Path,
        runners: MutableMapping[str, ProjectionRunner],
        make_runner: RunnerFactory,
        *,
        interval: float = 0.5,
        catch_up_timeout: float = 60.0,
        grace: float = 10.0,
    ) -> None:
        self.views_dir = views_dir
        self.runners = runners
        self.make_runner = make_runner
        self.interval = interval
        self.catch_up_timeout = catch_up_timeout
        self.grace = grace  # reads already holding the old runner finish on it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="view-swapper", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.catch_up_timeout + 5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception as exc:  # keep serving the old version; try again next time
                log.exception("projection.swap_failed", error=repr(exc))

    def check(self) -> list[str]:
        """Swap in whatever is offered or pointed to; the names swapped."""
        swapped = []
        with self._lock:
            for name in list(self.runners):
                current = Path(self.runners[name].store.path)
                offer = view_files.offered(self.views_dir, name)
                if offer is not None and offer != current and offer.exists():
                    old = self._swap(name, offer)
                    view_files.point_to(self.views_dir, name, offer)
                    view_files.withdraw_offer(self.views_dir, name)
                    self._retire(old, remove=True)
                    swapped.append(name)
                    continue
                if offer is not None and (offer == current or not offer.exists()):
                    view_files.withdraw_offer(self.views_dir, name)
                live = view_files.live_path(self.views_dir, name)
                if live != current and live.exists():  # another process took the offer
                    self._retire(self._swap(name, live), remove=False)
                    swapped.append(name)
        return swapped

    def _retire(self, old: ProjectionRunner, *, remove: bool) -> None:
        """Close the old version once reads that already hold it are done."""

        def retire() -> None:
            old.store.close()
            if remove:
                view_files.remove_database(Path(old.store.path))

        timer = threading.Timer(self.grace, retire)
        timer.daemon = True
        timer.start()

    def _swap(self, name: str, path: Path) -> ProjectionRunner:
        old = self.runners[name]
        new = self.make_runner(name, path)
        log.info("projection.swap_started", projection=name, view=path.name, old=old.position)
        if not old.running:
            self.runners[name] = new
        elif isinstance(old.stream, EmbeddedStream):
            new.start()
            # the live one keeps moving: chase it, then hand over
            for _ in range(3):
                if not new.wait_for(old.position, self.catch_up_timeout):
                    break
            self.runners[name] = new
            old.stop()
        else:
            old.stop()
            target = old.position
            new.start()
            if not new.wait_for(target, self.catch_up_timeout):
                log.warning("projection.swap_behind", projection=name, target=target)
            self.runners[name] = new
        log.info("projection.swapped", projection=name, view=path.name, position=new.position)
        return old
