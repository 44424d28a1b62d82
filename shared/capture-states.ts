// What a capture is and where it stands, as data: kinds, statuses, end reasons
// and stats. The relay stores and sends these, the agent ends captures with
// them, the web shows them; each reads the lists here, so a new status or
// reason is one entry (and the compiler points at every table that must
// handle it). Names are part of the wire protocol and the HTTP API: never
// rename one.

export const CAPTURE_KINDS = ['dump', 'top', 'record'] as const;
export type CaptureKind = (typeof CAPTURE_KINDS)[number];

/**
 * `starting` until the first chunk, `running` while chunks arrive; then one of
 * the final states. `damaged`: its chunk file lost data after it was stored
 * (only the part before the damage reads back).
 */
export const CAPTURE_STATUSES = ['starting', 'running', 'complete', 'incomplete', 'target_exited', 'failed', 'damaged'] as const;
export type CaptureStatus = (typeof CAPTURE_STATUSES)[number];

/** The statuses of a capture that may still receive samples. */
export const ACTIVE_CAPTURE_STATUSES = ['starting', 'running'] as const satisfies readonly CaptureStatus[];

export function isCaptureStatus(value: unknown): value is CaptureStatus {
  return typeof value === 'string' && (CAPTURE_STATUSES as readonly string[]).includes(value);
}

export function isActiveStatus(status: CaptureStatus): boolean {
  return (ACTIVE_CAPTURE_STATUSES as readonly CaptureStatus[]).includes(status);
}

/** Why an agent ended a capture (capture_ended.reason on the wire). */
export const CAPTURE_END_REASONS = ['duration', 'stopped', 'target_exited', 'error', 'refused'] as const;
export type CaptureEndReason = (typeof CAPTURE_END_REASONS)[number];

/** How sampling itself ends; `refused` is decided before any sampling starts. */
export type SamplingEndReason = Exclude<CaptureEndReason, 'refused'>;

/** The status each of the agent's end reasons leaves a capture in. */
export const STATUS_AFTER_END: Readonly<Record<CaptureEndReason, CaptureStatus>> = {
  duration: 'complete',
  stopped: 'complete',
  target_exited: 'target_exited',
  error: 'failed',
  refused: 'failed',
};

/** Why the relay ended a capture itself (or, for `dump`, saw it complete). */
export const RELAY_END_REASONS = [
  'dump',
  'session_closed',
  'agent_disconnected',
  'agent_lost_capture',
  'missing_chunks',
  'invalid_chunk',
  'too_large',
  'chunk_too_large',
  'disk_full',
  'damaged',
] as const;
export type RelayEndReason = (typeof RELAY_END_REASONS)[number];

/** A capture's `endReason` as stored and shown in the HTTP API. */
export type EndReason = CaptureEndReason | RelayEndReason;

/** Counters an agent reports with each chunk (the relay counts `samples` itself from the chunks). */
export const CAPTURE_STAT_NAMES = ['samples', 'late', 'ticks', 'errors'] as const;
export type CaptureStatsWire = Record<(typeof CAPTURE_STAT_NAMES)[number], number>;

export function zeroStats(): CaptureStatsWire {
  return { samples: 0, late: 0, ticks: 0, errors: 0 };
}
