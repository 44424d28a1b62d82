// Flags shared by `record` and `top`, named as py-spy names them, and the
// translation from parsed flags to a capture and a view.
import { PeriscopeError } from '../shared/errors.ts';
import { CAPTURE_MODES, CAPTURE_MODE_INFO, DEFAULT_CAPTURE_MODE, isCaptureMode } from '../shared/capture-states.ts';
import { VIEW_FLAG_NAMES, VIEW_FLAGS, type ViewOptions, viewOptionsFromFlags } from '../shared/profile/view-options.ts';
import type { OptionSpec, ParsedArgs } from './args.ts';
import type { CaptureOptions } from './capture.ts';
import type { NativeTargetInfo } from './native.ts';

export const MAX_RATE = 100_000;

export const samplingSpecs: OptionSpec[] = [
  { name: 'pid', short: 'p', type: 'number', description: 'process id of the Python program to profile' },
  { name: 'rate', short: 'r', type: 'number', description: 'samples per second', default: 100 },
  { name: 'subprocesses', short: 's', type: 'boolean', description: 'also profile Python child processes, following forks as they come and go' },
  { name: 'mode', type: 'string', description: `which samples to keep: ${CAPTURE_MODES.map((m) => `${m} (${CAPTURE_MODE_INFO[m].description})`).join(', ')}`, default: DEFAULT_CAPTURE_MODE },
  { name: 'blocking', type: 'boolean', description: 'pause the target with ptrace at each sample (consistent stacks, slower target)' },
  { name: 'nonblocking', type: 'boolean', description: 'never pause the target (the default)' },
  ...VIEW_FLAG_NAMES.flatMap((flag): OptionSpec[] => {
    const { cli, short, description, cliOff } = VIEW_FLAGS[flag];
    const on: OptionSpec = { name: cli, short, type: 'boolean', description };
    return cliOff ? [on, { name: cliOff.name, type: 'boolean', description: cliOff.description }] : [on];
  }),
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
];

export function captureOptionsFrom(options: ParsedArgs['options'], pid: number): CaptureOptions {
  const rate = options.rate as number;
  if (!(Number.isInteger(rate) && rate >= 1 && rate <= MAX_RATE)) {
    throw new PeriscopeError('BAD_ARGUMENT', `--rate must be a whole number from 1 to ${MAX_RATE}, got ${rate}`);
  }
  const duration = options.duration as number | undefined;
  if (duration !== undefined && !(duration > 0)) {
    throw new PeriscopeError('BAD_ARGUMENT', `--duration must be a positive number of seconds, got ${duration}`);
  }
  if (options.blocking && options.nonblocking) {
    throw new PeriscopeError('BAD_ARGUMENT', '--blocking and --nonblocking contradict each other; pass one');
  }
  if (!isCaptureMode(options.mode)) {
    throw new PeriscopeError('BAD_ARGUMENT', `--mode must be one of ${CAPTURE_MODES.join(', ')}; got ${JSON.stringify(options.mode)}`);
  }
  return {
    pid,
    rate,
    duration,
    subprocesses: options.subprocesses === true,
    blocking: options.blocking === true,
    mode: options.mode,
  };
}

export function viewOptionsFrom(options: ParsedArgs['options']): ViewOptions {
  return viewOptionsFromFlags(options);
}

/**
 * A free-threaded build running without its GIL has no thread that ever holds
 * one, so `--gil` would drop every sample: keep them all and say why.
 */
export function gilFilterFor(gil: boolean, target: NativeTargetInfo, note: (line: string) => void): boolean {
  if (!gil || target.gilEnabled) return gil;
  note(`note: Python ${target.version} is a free-threaded build running without a GIL, so no thread ever holds one; --gil filters nothing here`);
  return false;
}
