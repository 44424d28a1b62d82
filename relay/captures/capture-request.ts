// Turns the body of POST /api/agents/:id/captures into a CaptureSpec: fills in
// defaults, checks the protocol's bounds (parseCaptureSpec) and then the relay's
// tighter ones. The agent applies its own bounds again on its side.
import { ProtocolError, parseCaptureSpec, type CaptureSpec } from '../../shared/protocol.ts';
import { PeriscopeError } from '../../shared/errors.ts';
import { DEFAULT_CAPTURE_MODE } from '../../shared/capture-states.ts';
import { MAX_DURATION_S, MAX_RATE_HZ } from './capture-service.ts';

const DEFAULT_RATE = 100;
const DEFAULT_RECORD_SECONDS = 60;

function invalid(message: string): never {
  throw new PeriscopeError('BAD_ARGUMENT', message);
}

export function captureSpecFromRequest(body: unknown): CaptureSpec {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) invalid('the body must be a JSON object like {"kind": "record", "pid": 1234}');
  const b = body as Record<string, unknown>;
  const kind = b.kind;
  const withDefaults = {
    kind,
    pid: b.pid,
    rate: b.rate ?? DEFAULT_RATE,
    duration: b.duration ?? (kind === 'record' ? DEFAULT_RECORD_SECONDS : 0),
    subprocesses: b.subprocesses ?? false,
    mode: b.mode ?? DEFAULT_CAPTURE_MODE,
    idle: b.idle ?? false,
    gil: b.gil ?? false,
    blocking: b.blocking ?? false,
  };
  let spec: CaptureSpec;
  try {
    spec = parseCaptureSpec(withDefaults);
  } catch (err) {
    // The spec has no `type`, so the protocol's messages start with "undefined.".
    if (err instanceof ProtocolError) invalid(err.message.replace(/^undefined\./, ''));
    throw err;
  }
  if (spec.rate > MAX_RATE_HZ) invalid(`rate must be at most ${MAX_RATE_HZ} samples per second on this relay; got ${spec.rate}`);
  if (spec.duration > MAX_DURATION_S) invalid(`duration must be at most ${MAX_DURATION_S} seconds; got ${spec.duration}`);
  if (spec.kind === 'record' && spec.duration <= 0) invalid(`a record capture needs a duration from 1 to ${MAX_DURATION_S} seconds (use kind "top" to sample until stopped)`);
  // A dump is one look at every thread: rate and duration do not apply.
  if (spec.kind === 'dump') spec.duration = 0;
  return spec;
}
