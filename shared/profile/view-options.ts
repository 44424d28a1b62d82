// Options shared by every aggregation and exporter, named after py-spy's flags so
// that "periscope --function" means what "py-spy record --function" means.
// VIEW_FLAGS is the one list of the boolean ones: the CLI's flags, the relay's
// download query parameters and the web's download links are made from it.
import { PeriscopeError } from '../errors.ts';

export interface ViewOptions {
  /** Include samples taken while the thread was idle (default false, like py-spy). */
  idle?: boolean;
  /** Only samples where the thread held the GIL (default false). */
  gil?: boolean;
  /** Aggregate by function instead of by line (py-spy --function). */
  function?: boolean;
  /** Drop line numbers from frame labels, which also merges a function's lines (py-spy --nolineno). */
  nolineno?: boolean;
  /**
   * One tree for every process of a multi-process capture instead of a
   * `process PID: "command"` root per process (fork-per-job workers, and
   * comparing captures whose pids differ).
   */
  mergeProcesses?: boolean;
  /** Add a `thread (name) tid` root frame per thread (py-spy --threads). */
  threads?: boolean;
  /** Only samples from these rows of the thread table (default: all threads). */
  threadRows?: readonly number[];
}

export type ViewFlag = keyof { [K in keyof ViewOptions as Required<ViewOptions>[K] extends boolean ? K : never]: true };

export interface ViewFlagInfo {
  /** The CLI's long flag that turns it on, without dashes (py-spy's name where it has one). */
  cli: string;
  short?: string;
  description: string;
  /** For an option whose default depends on the capture: the CLI flag that turns it off. */
  cliOff?: { name: string; description: string };
}

/** Every boolean view option; the query parameter of a download is the key. */
export const VIEW_FLAGS: Readonly<Record<ViewFlag, ViewFlagInfo>> = {
  idle: { cli: 'idle', short: 'i', description: 'include idle (waiting) threads' },
  gil: { cli: 'gil', short: 'g', description: 'only count samples of threads holding the GIL' },
  function: { cli: 'function', short: 'F', description: 'aggregate by function, not by line' },
  nolineno: { cli: 'nolineno', description: 'do not show line numbers' },
  threads: { cli: 'threads', short: 't', description: 'show thread ids and names as root frames' },
  mergeProcesses: {
    cli: 'merge-processes',
    short: 'm',
    description: 'with --subprocesses: one tree for all processes (the default when the children share a command line)',
    cliOff: { name: 'per-process', description: 'with --subprocesses: a root frame per process, even when the children share a command line' },
  },
};

export const VIEW_FLAG_NAMES = Object.keys(VIEW_FLAGS) as readonly ViewFlag[];

/** The query string of a download with these options (only the flags that are set). */
export function viewQuery(options: ViewOptions): string {
  return VIEW_FLAG_NAMES.filter((f) => options[f] !== undefined)
    .map((f) => `${f}=${options[f] ? 1 : 0}`)
    .join('&');
}

/** A download's query value of a flag: 1/true/yes or 0/false/no; absent is undefined. */
function flagValue(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === '' || value === '1' || value === 'true' || value === 'yes') return true;
  if (value === '0' || value === 'false' || value === 'no') return false;
  throw new PeriscopeError('BAD_ARGUMENT', `${name} must be true or false; got ${JSON.stringify(value)}`);
}

/**
 * View options from a download's query parameters; a flag that is absent takes
 * its value from `defaults`, or stays unset (mergeProcesses: decided by the capture).
 */
export function viewOptionsFromQuery(query: (name: string) => string | undefined, defaults: ViewOptions = {}): ViewOptions {
  const options: ViewOptions = {};
  for (const flag of VIEW_FLAG_NAMES) {
    const value = flagValue(flag, query(flag)) ?? defaults[flag] ?? (VIEW_FLAGS[flag].cliOff ? undefined : false);
    if (value !== undefined) options[flag] = value;
  }
  return options;
}

/** View options from the CLI's parsed flags (keyed by long name); both of a flag's switches given is an error. */
export function viewOptionsFromFlags(flags: Record<string, unknown>): ViewOptions {
  const options: ViewOptions = {};
  for (const flag of VIEW_FLAG_NAMES) {
    const { cli, cliOff } = VIEW_FLAGS[flag];
    const on = flags[cli] === true;
    const off = cliOff !== undefined && flags[cliOff.name] === true;
    if (on && off) throw new PeriscopeError('BAD_ARGUMENT', `--${cli} and --${cliOff!.name} contradict each other; pass one`);
    if (on || off) options[flag] = on;
    else if (!cliOff) options[flag] = false;
  }
  return options;
}
