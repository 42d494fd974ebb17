"""A simulated clock for rehearsals: Wait states and retry back-off advance it instead of sleeping.

Three things read time in a rehearsal and all three are pointed here: the workflow's Wait states
and Retry intervals (moto's ASL interpreter), the project's own steps (`restore_runbook.common.clock`),
and emulated RDS (restorable times, snapshot times). A 20-minute restore then rehearses in
seconds while every step still sees consistent, realistic timestamps.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from unittest import mock


class SimulatedClock:
    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated clock needs an aware start time")
        self._now = start.astimezone(timezone.utc)
        self._lock = threading.Lock()
        self.waited_seconds = 0.0

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def naive_utcnow(self) -> datetime:
        """moto keeps naive UTC datetimes internally."""
        return self.now().replace(tzinfo=None)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self.waited_seconds += seconds

    @contextlib.contextmanager
    def installed(self) -> Iterator[SimulatedClock]:
        """Point the ASL interpreter, the project's steps and emulated RDS at this clock."""
        from moto.rds import models as rds_models
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

        import restore_runbook.common.clock

        def wait_interval(_self: object, env: object, wait_seconds: float) -> None:
            if wait_seconds > 0:
                self.advance(wait_seconds)

        with contextlib.ExitStack() as stack:
            stack.enter_context(mock.patch.object(wait_function.WaitFunction, "_wait_interval", wait_interval))
            stack.enter_context(mock.patch.object(retrier_decl, "time", SimpleNamespace(sleep=self.advance)))
            stack.enter_context(mock.patch.object(restore_runbook.common.clock, "now", self.now))
            stack.enter_context(mock.patch.object(rds_models, "utcnow", self.naive_utcnow))
            yield self
