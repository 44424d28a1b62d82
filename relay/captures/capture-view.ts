// The JSON shape of a capture in the HTTP API.
import type { CaptureRecord } from '../store/captures.ts';
import type { CaptureSpec, CaptureStatsWire } from '../../shared/protocol.ts';

export interface CaptureView {
  id: string;
  sessionId: string;
  agentId: string;
  requestedBy: string;
  kind: string;
  pid: number;
  options: Omit<CaptureSpec, 'kind' | 'pid'>;
  status: string;
  samples: number;
  chunks: number;
  stats: CaptureStatsWire;
  startedAt: string;
  endedAt: string | null;
  /** Wall-clock seconds from request to end (or to now while it runs). */
  durationSeconds: number;
  endReason: string | null;
  stopRequestedBy: string | null;
  error: { code: string; message: string } | null;
}

export function captureView(c: CaptureRecord, now = Date.now()): CaptureView {
  const { rate, duration, subprocesses, idle, gil, blocking } = c.options;
  return {
    id: c.id,
    sessionId: c.sessionId,
    agentId: c.agentId,
    requestedBy: c.requestedBy,
    kind: c.kind,
    pid: c.pid,
    options: { rate, duration, subprocesses, idle, gil, blocking },
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
