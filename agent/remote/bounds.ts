// What the agent agrees to do for the relay. The relay (and the engineer
// behind it) is not trusted to be reasonable: every request is checked here
// against limits the customer controls on the command line, and refused with
// a message that names the limit and the flag that sets it.
//
//   --pids 12,34       only these processes (their children too, when the
//                      engineer asks for --subprocesses on one of them)
//   --max-rate N       samples per second, default 1000
//   --max-duration S   seconds per top/record, default 600; a capture asked
//                      to run "until stopped" (duration 0) runs at most this
//   --allow-locals     local variables. This agent version never collects
//                      them; a request that asks for them (any spec field
//                      named like "locals" set to a true value) is refused,
//                      with or without the flag, saying which.
//
// Plus a fixed limit of MAX_CONCURRENT_CAPTURES running top/record captures,
// and a fixed rate of dumps (blocking ones stricter), which RemoteSession
// counts with a DumpRateLimit (agent/remote/dump-rate.ts).
import type { CaptureSpec } from '../../shared/protocol.ts';

export const DEFAULT_MAX_RATE = 1000;
export const DEFAULT_MAX_DURATION_S = 600;
export const MAX_CONCURRENT_CAPTURES = 8;
export const REFUSED = 'REFUSED_BY_AGENT';

export interface AgentLimits {
  maxRate: number;
  maxDurationS: number;
  allowLocals: boolean;
  /** The customer's --pids; undefined allows every visible Python process. */
  allowedPids?: ReadonlySet<number>;
  maxConcurrent?: number;
}

export type BoundsResult =
  | { ok: true; /** Seconds the capture will run (dump: 0). */ durationS: number; /** duration was 0 and capped to the maximum */ capped: boolean }
  | { ok: false; code: string; message: string };

function refused(message: string): BoundsResult {
  return { ok: false, code: REFUSED, message };
}

/** Names of spec fields in the raw request that ask for local variables. */
export function localsRequested(rawSpec: unknown): string[] {
  if (rawSpec === null || typeof rawSpec !== 'object') return [];
  return Object.entries(rawSpec as Record<string, unknown>)
    .filter(([key, value]) => /locals/i.test(key) && value !== false && value !== 0 && value !== null && value !== undefined && value !== '')
    .map(([key]) => key);
}

function pidList(pids: ReadonlySet<number>): string {
  const all = [...pids].sort((a, b) => a - b);
  return all.length > 12 ? `${all.slice(0, 12).join(', ')}, …` : all.join(', ');
}

/**
 * Checks a request against the customer's limits. `rawSpec` is the spec as
 * it arrived (before validation dropped unknown fields), for the locals check.
 * Visibility of the pid (is it a Python process this agent lists?) is checked
 * by the caller afterwards, since it costs a look at /proc.
 */
export function checkSpec(spec: CaptureSpec, rawSpec: unknown, limits: AgentLimits, running: number): BoundsResult {
  const locals = localsRequested(rawSpec);
  if (locals.length > 0) {
    return refused(
      limits.allowLocals
        ? `the request asks for local variables (${locals.join(', ')}); this agent version never collects local variables, even with --allow-locals`
        : `the request asks for local variables (${locals.join(', ')}); this agent does not collect them unless the customer passes --allow-locals (and this version never does)`,
    );
  }
  if (limits.allowedPids && !limits.allowedPids.has(spec.pid)) {
    return refused(`pid ${spec.pid} is not among the processes the customer allowed with --pids (${pidList(limits.allowedPids)})`);
  }
  if (spec.kind === 'dump') return { ok: true, durationS: 0, capped: false };
  if (spec.rate > limits.maxRate) {
    return refused(`a rate of ${spec.rate} Hz is above this agent's limit of ${limits.maxRate} Hz (the customer sets it with --max-rate)`);
  }
  if (spec.duration > limits.maxDurationS) {
    return refused(`a duration of ${spec.duration} s is above this agent's limit of ${limits.maxDurationS} s (the customer sets it with --max-duration)`);
  }
  const maxConcurrent = limits.maxConcurrent ?? MAX_CONCURRENT_CAPTURES;
  if (running >= maxConcurrent) {
    return refused(`${running} captures are already running, this agent's limit (a fixed limit of ${maxConcurrent}; stop one first)`);
  }
  if (spec.duration === 0) return { ok: true, durationS: limits.maxDurationS, capped: true };
  return { ok: true, durationS: spec.duration, capped: false };
}

/** Parses --pids "12,34 56" into a set; throws a message on anything else. */
export function parsePids(text: string): Set<number> {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  if (parts.length === 0) throw new Error('--pids needs at least one process id, e.g. --pids 12,34');
  const out = new Set<number>();
  for (const p of parts) {
    if (!/^\d+$/.test(p) || Number(p) <= 0 || Number(p) > 2 ** 31 - 1) throw new Error(`--pids: ${JSON.stringify(p)} is not a process id`);
    out.add(Number(p));
  }
  return out;
}
