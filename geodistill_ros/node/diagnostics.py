"""Run-time statistics of the localizer node and their ``diagnostic_msgs/DiagnosticStatus``.

``NodeStats`` is written by the subscription callbacks and the inference worker (it holds
a lock) and read by the diagnostics timer: ``window()`` returns the counts since the last
report (rates over that window) plus the running totals and latency percentiles.

Level of the status (DiagnosticStatus constants):
- ERROR: images arrived in the window but every one was rejected (no output);
- WARN: no image in the window, or some rejections / low-confidence results / rejected
  fixes / map-source errors in it;
- OK: otherwise.
The message names the dominant problem; the key-values carry the numbers (snake_case keys,
units in the names).
"""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
import math
import threading
import time

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
import numpy as np

INPUTS = ('image', 'camera_info', 'fix', 'heading_prior', 'twist', 'odometry')
STAGES = ('decode', 'pairing', 'crop', 'inference', 'post', 'fusion', 'publish')
LATENCY_WINDOW = 200
"""Number of most recent processed frames behind the latency percentiles."""


@dataclass
class StatsWindow:
    """What happened since the previous report (and totals), as plain numbers."""

    elapsed_s: float
    received: Counter
    outputs: int
    low_confidence: int
    dropped_busy: int
    rejections: Counter
    fixes_rejected: Counter
    map_errors: int
    inputs_rejected: Counter = field(default_factory=Counter)
    totals: dict = field(default_factory=dict)
    latency_ms: dict = field(default_factory=dict)


class NodeStats:
    """Thread-safe counters, rates and latency windows of one node."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = clock()
        self._window = self._new_window()
        self.totals = {'images': 0, 'outputs': 0, 'low_confidence': 0, 'dropped_busy': 0,
                       'map_errors': 0, 'time_jumps': 0}
        self.received_total: Counter = Counter()
        self.rejections_total: Counter = Counter()
        self.fixes_rejected_total: Counter = Counter()
        self.inputs_rejected_total: Counter = Counter()
        self._latency_s: deque = deque(maxlen=LATENCY_WINDOW)
        self._stage_s = {stage: deque(maxlen=LATENCY_WINDOW) for stage in STAGES}
        self.last_confidence = float('nan')
        self.last_fix_age_s = float('nan')
        self.last_map_error = ''
        self.last_rejection = ''
        self.last_yaw = {'yaw_source': 'none', 'yaw_std_deg': float('nan'),
                         'yaw_prior_source': 'none'}
        self.yaw_sources_total: Counter = Counter()

    @staticmethod
    def _new_window() -> dict:
        return {'received': Counter(), 'outputs': 0, 'low_confidence': 0, 'dropped_busy': 0,
                'rejections': Counter(), 'fixes_rejected': Counter(), 'map_errors': 0,
                'inputs_rejected': Counter()}

    def received(self, topic: str) -> None:
        with self._lock:
            self._window['received'][topic] += 1
            self.received_total[topic] += 1
            if topic == 'image':
                self.totals['images'] += 1

    def count(self, topic: str) -> int:
        """Messages received on ``topic`` since start."""
        with self._lock:
            return self.received_total[topic]

    def dropped_busy(self) -> None:
        with self._lock:
            self._window['dropped_busy'] += 1
            self.totals['dropped_busy'] += 1

    def rejected(self, reason: str, detail: str = '') -> None:
        """An image that produced no localization, by reason (e.g. 'image_decode')."""
        with self._lock:
            self._window['rejections'][reason] += 1
            self.rejections_total[reason] += 1
            self.last_rejection = f'{reason}: {detail}' if detail else reason
            if reason.startswith('map_'):
                self._window['map_errors'] += 1
                self.totals['map_errors'] += 1
                self.last_map_error = detail or reason

    def fix_rejected(self, reason: str) -> None:
        """A NavSatFix message not cached (NO_FIX, NaN, out of range)."""
        with self._lock:
            self._window['fixes_rejected'][reason] += 1
            self.fixes_rejected_total[reason] += 1

    def input_rejected(self, topic: str, reason: str) -> None:
        """A CameraInfo, heading_prior or gnss_velocity message not used
        (``<topic>_rejected_<reason>``)."""
        with self._lock:
            key = f'{topic}_rejected_{reason}'
            self._window['inputs_rejected'][key] += 1
            self.inputs_rejected_total[key] += 1

    def time_jump(self) -> None:
        with self._lock:
            self.totals['time_jumps'] += 1

    def localized(self, confidence: float, fix_age_s: float, low_confidence: bool,
                  published: bool, latency_s: float, stages_s: dict[str, float]) -> None:
        """A frame went through the model; ``published``: a pose went out."""
        with self._lock:
            self.last_confidence = float(confidence)
            self.last_fix_age_s = float(fix_age_s)
            if low_confidence:
                self._window['low_confidence'] += 1
                self.totals['low_confidence'] += 1
            if published:
                self._window['outputs'] += 1
                self.totals['outputs'] += 1
            self._latency_s.append(float(latency_s))
            for stage, seconds in stages_s.items():
                self._stage_s[stage].append(float(seconds))

    def yaw_used(self, source: str, std_rad: float, prior_source: str) -> None:
        """Where a localized frame's yaw came from ('prior', 'orientation_model',
        'rotation_search'), its published standard deviation and the prior's source."""
        with self._lock:
            self.last_yaw = {'yaw_source': source, 'yaw_std_deg': math.degrees(std_rad),
                             'yaw_prior_source': prior_source}
            self.yaw_sources_total[source] += 1

    def yaw_report(self) -> dict:
        """The latest frame's yaw source, std and prior source, and frames per source."""
        with self._lock:
            return {**self.last_yaw, **{f'yaw_source_{source}_total': count
                                        for source, count in sorted(
                                            self.yaw_sources_total.items())}}

    def latency_percentiles_ms(self) -> dict[str, float]:
        """p50/p95 of the end-to-end latency and p50/p95 per stage (ms; NaN before any
        frame)."""
        with self._lock:
            total = np.asarray(self._latency_s)
            stages = {s: np.asarray(v) for s, v in self._stage_s.items()}
        out = {'p50': float('nan'), 'p95': float('nan')}
        if total.size:
            out['p50'], out['p95'] = (float(v) for v in np.percentile(total, [50, 95]) * 1e3)
        for stage, values in stages.items():
            out[f'{stage}_p50'] = float(np.median(values) * 1e3) if values.size else float('nan')
            out[f'{stage}_p95'] = (float(np.percentile(values, 95) * 1e3) if values.size
                                   else float('nan'))
        return out

    def window(self) -> StatsWindow:
        """Counts since the previous call (then reset) plus totals and latencies."""
        now = self._clock()
        latency = self.latency_percentiles_ms()
        with self._lock:
            w, self._window = self._window, self._new_window()
            elapsed, self._window_start = now - self._window_start, now
            totals = dict(self.totals, rejections=dict(self.rejections_total),
                          fixes_rejected=dict(self.fixes_rejected_total),
                          inputs_rejected=dict(self.inputs_rejected_total))
        return StatsWindow(elapsed_s=max(elapsed, 1e-9), received=w['received'],
                           outputs=w['outputs'], low_confidence=w['low_confidence'],
                           dropped_busy=w['dropped_busy'], rejections=w['rejections'],
                           fixes_rejected=w['fixes_rejected'], map_errors=w['map_errors'],
                           inputs_rejected=w['inputs_rejected'], totals=totals,
                           latency_ms=latency)


def _level_and_message(w: StatsWindow) -> tuple[bytes, str]:
    images = w.received['image']
    if images and not w.outputs and not w.low_confidence and w.rejections:
        reason, count = w.rejections.most_common(1)[0]
        return DiagnosticStatus.ERROR, f'no output: {count} image(s) rejected ({reason})'
    if not images:
        return DiagnosticStatus.WARN, 'no images received'
    problems = []
    if w.rejections:
        problems.append('rejected ' + ', '.join(f'{r} x{n}' for r, n in
                                                w.rejections.most_common()))
    if w.low_confidence:
        problems.append(f'low confidence x{w.low_confidence}')
    if w.fixes_rejected:
        problems.append('fixes rejected ' + ', '.join(f'{r} x{n}' for r, n in
                                                      w.fixes_rejected.most_common()))
    if w.inputs_rejected:
        problems.append(', '.join(f'{key} x{n}' for key, n in w.inputs_rejected.most_common()))
    if problems:
        return DiagnosticStatus.WARN, '; '.join(problems)
    return DiagnosticStatus.OK, f'localizing at {w.outputs / w.elapsed_s:.1f} Hz'


def _fmt(value) -> str:
    return f'{value:.4g}' if isinstance(value, float) else str(value)


def diagnostic_status(w: StatsWindow, name: str, hardware_id: str,
                      extra: dict | None = None) -> DiagnosticStatus:
    """The node's DiagnosticStatus for one report window; ``extra`` adds key-values."""
    level, message = _level_and_message(w)
    values = {f'{topic}_rate_hz': w.received[topic] / w.elapsed_s for topic in INPUTS}
    values['output_rate_hz'] = w.outputs / w.elapsed_s
    values['latency_p50_ms'] = w.latency_ms['p50']
    values['latency_p95_ms'] = w.latency_ms['p95']
    for stage in STAGES:
        values[f'latency_{stage}_p50_ms'] = w.latency_ms[f'{stage}_p50']
    totals = w.totals
    values.update({'images_total': totals['images'], 'outputs_total': totals['outputs'],
                   'dropped_busy_total': totals['dropped_busy'],
                   'dropped_busy_window': w.dropped_busy,
                   'low_confidence_total': totals['low_confidence'],
                   'map_errors_total': totals['map_errors'],
                   'time_jumps_total': totals['time_jumps']})
    for reason, count in sorted(totals['rejections'].items()):
        values[f'rejected_{reason}_total'] = count
    for reason, count in sorted(totals['fixes_rejected'].items()):
        values[f'fixes_rejected_{reason}_total'] = count
    for key, count in sorted(totals.get('inputs_rejected', {}).items()):
        values[f'{key}_total'] = count
    values.update(extra or {})
    status = DiagnosticStatus(level=level, name=name, message=message,
                              hardware_id=hardware_id)
    status.values = [KeyValue(key=k, value=_fmt(v)) for k, v in values.items()]
    return status
