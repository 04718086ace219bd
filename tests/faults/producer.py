"""A router's event stream for fault tests: CostTracker.track_routing_decision in a thread."""

from __future__ import annotations

import threading

from routing import CostTracker


class Producer:
    """Tracks `per_tick` decisions every `tick` seconds until stopped; keeps every event id."""

    def __init__(self, tracker: CostTracker, *, per_tick: int = 50, tick: float = 0.02) -> None:
        self.tracker, self.per_tick, self.tick = tracker, per_tick, tick
        self.ids: list[str] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Producer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            for _ in range(self.per_tick):
                try:
                    self.ids.append(
                        self.tracker.track_routing_decision(
                            f"prompt {len(self.ids)}",
                            ["technical"],
                            "routellm",
                            "gpt-3.5-turbo",
                            None,
                            prompt_tokens=100,
                            completion_tokens=20,
                        )
                    )
                except BaseException as exc:  # the test asserts there were none
                    self.errors.append(exc)
            self._stop.wait(self.tick)
