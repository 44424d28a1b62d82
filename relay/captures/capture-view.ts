// Builds a capture's JSON view for the HTTP API (the shape is shared/http-views.ts).
import type { CaptureRecord } from '../store/captures.ts';
import type { CaptureView } from '../../shared/http-views.ts';
import { DEFAULT_CAPTURE_MODE } from '../../shared/capture-states.ts';

export function captureView(c: CaptureRecord, now = Date.now()): CaptureView {
  const { rate, duration, subprocesses, idle, gil, blocking } = c.options;
  // Captures stored before modes existed kept every sample.
  const mode = c.options.mode ?? DEFAULT_CAPTURE_MODE;
  return {
    id: c.id,
    sessionId: c.sessionId,
    agentId: c.agentId,
    requestedBy: c.requestedBy,
    kind: c.kind,
    pid: c.pid,
    options: { rate, duration, subprocesses, mode, idle, gil, blocking },
    status: c.status,
    samples: c.samples,
    chunks: c.chunks,
    stats: { ...c.stats, samples: c.samples },
    startedAt: new Date(c.startedAt).toISOString(),
    endedAt: c.endedAt === null ? null : new Date(c.endedAt).toISOString(),
    durationSeconds: Math.round(((c.endedAt ?? now) - c.startedAt) / 100) / 10,
    endReason: c.endReason,
    stopRequestedBy: c.stopRequestedBy,
    error: c.error,
  };
}
