// Turns error codes and messages from the relay, the agent and the sampler into
// plain words, with the fix when there is one. Codes are those of
// shared/errors.ts, plus HTTP_<status> for an answer without a JSON error body
// (web/src/api.ts).

import { h } from './dom.ts';

export interface Explained {
  title: string;
  detail: string;
  fix?: string[];
}

export const PTRACE_FIX = [
  'Docker: start the container with --cap-add SYS_PTRACE (docker run --cap-add SYS_PTRACE …, or cap_add: [SYS_PTRACE] in compose).',
  'Kubernetes: add SYS_PTRACE to the container’s securityContext.capabilities.add, then restart the pod.',
  'On the host: /proc/sys/kernel/yama/ptrace_scope must be 0 or 1, and the agent must run as the target’s user or root.',
];

export function explain(code: string | undefined, message: string | undefined): Explained {
  const c = (code ?? '').toUpperCase();
  const m = message ?? '';
  const has = (re: RegExp) => re.test(c) || re.test(m);
  if (has(/PERMISSION_DENIED|EPERM|SYS_PTRACE|ptrace/i) && c !== 'FORBIDDEN') {
    return { title: 'Permission denied in the container', detail: m || 'The agent is not allowed to read this process’s memory.', fix: PTRACE_FIX };
  }
  if (has(/AGENT_OFFLINE|OFFLINE/)) {
    return {
      title: 'The agent is offline',
      detail: m || 'The customer’s agent is not connected.',
      fix: ['Ask the customer to check the terminal where they ran the one-liner, and to run it again if it has stopped.'],
    };
  }
  if (c === 'TARGET_EXITED' || c === 'PROCESS_EXITED') {
    return { title: 'The target process exited', detail: m || 'The Python process ended while it was being profiled. What was captured until then is kept.' };
  }
  if (c === 'ENDED_BY_CUSTOMER') {
    return {
      title: 'Ended by the customer',
      detail: m || 'The customer stopped the agent (Ctrl-C) while this ran; what arrived before is kept.',
      fix: ['To capture again, ask the customer to run the one-liner again.'],
    };
  }
  if (c === 'NO_SUCH_PROCESS') return { title: 'No such process', detail: m || 'That process is gone; refresh the process list.' };
  if (c === 'NOT_PYTHON') return { title: 'Not a Python process', detail: m || 'No CPython interpreter was found in that process.' };
  if (c === 'UNSUPPORTED_VERSION') return { title: 'Unsupported Python version', detail: m };
  if (c === 'FORBIDDEN' || c === 'HTTP_403') {
    return { title: 'Permission denied', detail: m || 'You are not a member of this support session.', fix: ['Ask the engineer who opened the session to add you as a member.'] };
  }
  if (c === 'UNAUTHENTICATED' || c === 'HTTP_401') return { title: 'Signed out', detail: m || 'Sign in again.' };
  if (/^(NOT_FOUND|HTTP_404)$/.test(c)) return { title: 'Not found', detail: m || 'It does not exist, or you may not see it.' };
  if (/SESSION_CLOSED|EXPIRED/.test(c)) return { title: 'Session closed', detail: m || 'This support session is closed.' };
  if (c === 'NETWORK') return { title: 'Relay unreachable', detail: m };
  if (c === 'CAPTURE_DAMAGED') {
    return { title: 'The capture’s file on the relay is damaged', detail: m || 'Part of this capture can no longer be read.', fix: ['What is shown (and what downloads) is the part before the damage. The relay’s operator can restore the file from a backup.'] };
  }
  if (c === 'DISK_FULL') {
    return { title: 'The relay’s disk is full', detail: m || 'The relay could not store data.', fix: ['Ask the relay’s operator to free space in its data dir (or make the volume larger); captures work again once there is room.'] };
  }
  return { title: 'Something went wrong', detail: m ? (c ? `${m} (${c})` : m) : c || 'Unknown error' };
}

/** A visible, announced error box. */
export function errorBox(code: string | undefined, message: string | undefined): HTMLDivElement {
  const e = explain(code, message);
  return h(
    'div',
    { class: 'error-box', role: 'alert' },
    h('strong', null, e.title),
    h('p', null, e.detail),
    e.fix ? h('ul', null, ...e.fix.map((f) => h('li', null, f))) : null,
  );
}

export function errorFrom(err: unknown): HTMLDivElement {
  const e = err as { code?: string; message?: string };
  return errorBox(e.code, e.message ?? String(err));
}
