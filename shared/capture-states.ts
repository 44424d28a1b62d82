// What a capture is and where it stands, as data: kinds, statuses, end reasons
// and stats. The relay stores and sends these, the agent ends captures with
// them, the web shows them; each reads the lists here, so a new status or
// reason is one entry (and the compiler points at every table that must
// handle it). Names are part of the wire protocol and the HTTP API: never
// rename one.

export const CAPTURE_KINDS = ['dump', 'top', 'record'] as const;
export type CaptureKind = (typeof CAPTURE_KINDS)[number];

/**
 * Which samples the agent keeps, as CPython 3.15's profiler's --mode: `wall`
 * every sample (waiting threads included; the views still hide idle ones until
 * asked), `cpu` only threads on CPU, `gil` only threads holding the GIL.
 */
export const CAPTURE_MODES = ['wall', 'cpu', 'gil'] as const;
export type CaptureMode = (typeof CAPTURE_MODES)[number];
export const DEFAULT_CAPTURE_MODE: CaptureMode = 'wall';

export const CAPTURE_MODE_INFO: Readonly<Record<CaptureMode, { label: string; description: string }>> = {
  wall: { label: 'Wall', description: 'every sample, waiting threads included' },
  cpu: { label: 'CPU', description: 'only samples of threads on CPU' },
  gil: { label: 'GIL', description: 'only samples of threads holding the GIL' },
};

export function isCaptureMode(value: unknown): value is CaptureMode {
  return typeof value === 'string' && (CAPTURE_MODES as readonly string[]).includes(value);
}

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

/**
 * Why the relay ended a capture itself (or, for `dump`, saw it complete; for
 * `customer_ended`, read it from the agent: a capture_ended `stopped` with
 * byCustomer, or the agent closing with CloseCode.AgentExit while it ran).
 */
export const RELAY_END_REASONS = [
  'dump',
  'session_closed',
  'customer_ended',
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
