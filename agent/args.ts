// A small argv parser for py-spy style flags: `--rate 100`, `--rate=100`,
// `-r 100`, boolean switches, and everything after `--` kept as a command.
import { PeriscopeError } from '../shared/errors.ts';

export interface OptionSpec {
  name: string; // long name without dashes, e.g. "rate"
  short?: string; // single letter without dash
  type: 'boolean' | 'number' | 'string';
  description: string;
  default?: boolean | number | string;
}

export interface ParsedArgs {
  options: Record<string, boolean | number | string | undefined>;
  rest: string[]; // after `--`
  /** Arguments that are not options, in order (only when the command takes them). */
  positional: string[];
}

export function parseArgs(argv: string[], specs: OptionSpec[], takesPositional = false): ParsedArgs {
  const options: ParsedArgs['options'] = {};
  const positional: string[] = [];
  for (const s of specs) options[s.name] = s.default;
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i++];
    if (arg === '--') return { options, rest: argv.slice(i), positional };
    if (takesPositional && (!arg.startsWith('-') || arg === '-')) {
      positional.push(arg);
      continue;
    }
    let spec: OptionSpec | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
      spec = byLong.get(name);
    } else if (arg.startsWith('-') && arg.length === 2) {
      spec = byShort.get(arg.slice(1));
    }
    if (!spec) throw new PeriscopeError('BAD_ARGUMENT', `unknown argument ${JSON.stringify(arg)}; see --help`);
    if (spec.type === 'boolean') {
      if (inline !== undefined) throw new PeriscopeError('BAD_ARGUMENT', `--${spec.name} takes no value`);
      options[spec.name] = true;
      continue;
    }
    const raw = inline ?? argv[i++];
    if (raw === undefined) throw new PeriscopeError('BAD_ARGUMENT', `--${spec.name} needs a value`);
    if (spec.type === 'number') {
      const n = Number(raw);
      if (!Number.isFinite(n)) throw new PeriscopeError('BAD_ARGUMENT', `--${spec.name} must be a number, got ${JSON.stringify(raw)}`);
      options[spec.name] = n;
    } else {
      options[spec.name] = raw;
    }
  }
  return { options, rest: [], positional };
}

export function usage(command: string, summary: string, specs: OptionSpec[]): string {
  const lines = [`usage: periscope ${command}`, '', summary, '', 'options:'];
  for (const s of specs) {
    const flag = `${s.short ? `-${s.short}, ` : '    '}--${s.name}${s.type === 'boolean' ? '' : ` <${s.type === 'number' ? 'N' : 'VALUE'}>`}`;
    lines.push(`  ${flag.padEnd(28)} ${s.description}${s.default !== undefined && s.type !== 'boolean' ? ` (default ${s.default})` : ''}`);
  }
  return lines.join('\n');
}

/** A pid option: a positive integer, or a BAD_ARGUMENT naming the flag. */
export function requirePid(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new PeriscopeError('BAD_ARGUMENT', '--pid PID is required (a positive process id)');
  }
  return value;
}
