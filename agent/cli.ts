// The agent's command line: local `dump`, `top` and `record`, and `connect`
// to a relay. Errors print `periscope: CODE: message` and exit 1.
import { parseArgs, requirePid, usage, type OptionSpec } from './args.ts';
import { asyncDump, dump, formatDumpText, formatTasksText } from './dump.ts';
import { isPeriscopeError } from '../shared/errors.ts';
import { AGENT_VERSION } from './version.ts';
import { runRecord } from './record.ts';
import { runTop } from './top.ts';
import { runDiff } from './diff.ts';
import { inertText } from '../shared/export/inert-text.ts';
import { FORMAT_NAMES } from '../shared/export/formats.ts';

const dumpSpecs: OptionSpec[] = [
  { name: 'pid', short: 'p', type: 'number', description: 'process id of the Python program to dump' },
  { name: 'json', short: 'j', type: 'boolean', description: 'print a JSON list of threads instead of text' },
  { name: 'blocking', type: 'boolean', description: 'pause the target with ptrace while reading (consistent stacks)' },
  { name: 'nonblocking', type: 'boolean', description: 'never pause the target (the default)' },
  { name: 'subprocesses', short: 's', type: 'boolean', description: 'also dump Python child processes' },
  {
    name: 'async',
    type: 'boolean',
    description: 'also print the asyncio task tree (Python 3.14+); with --json print {threads, tasks, task_sources}',
  },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
];

const topUsage = `periscope ${AGENT_VERSION} - sample the Python stacks of a running process from outside it

usage:
  periscope dump --pid PID [--json] [--async] [--blocking] [--subprocesses]
  periscope record --pid PID [-r RATE] [-d SECONDS] [-f ${FORMAT_NAMES.join('|')}] [-o FILE] [options]
  periscope record [options] -- python3 app.py ...
  periscope top --pid PID [-r RATE] [options]
  periscope diff BASELINE CURRENT [-o diff.svg]   (files written with -f raw or -f speedscope)
  periscope connect RELAY_URL [--token-file FILE] [--pids 12,34] [--max-rate N] [--max-duration S]
  periscope --version

Run \`periscope COMMAND --help\` for a command's options.`;

function runDump(argv: string[]): number {
  const { options } = parseArgs(argv, dumpSpecs);
  if (options.help) {
    console.log(usage('dump --pid PID [options]', 'Prints the Python stack of every thread, innermost frame first.', dumpSpecs));
    return 0;
  }
  const pid = requirePid(options.pid);
  const withTasks = options.async === true;
  const processes = dump(pid, {
    blocking: options.blocking === true && options.nonblocking !== true,
    subprocesses: options.subprocesses === true,
    asyncio: withTasks,
  });
  if (options.json) {
    const doc = withTasks ? asyncDump(processes) : processes.flatMap((p) => p.threads);
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  } else {
    process.stdout.write(formatDumpText(processes));
    if (withTasks) process.stdout.write(formatTasksText(processes));
  }
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'dump':
      return runDump(rest);
    case 'record':
      return runRecord(rest);
    case 'top':
      return runTop(rest);
    case 'diff':
      return runDiff(rest);
    case 'connect':
      return (await import('./connect.ts')).runConnect(rest);
    case '--version':
    case 'version':
      console.log(`periscope ${AGENT_VERSION}`);
      return 0;
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      console.log(topUsage);
      return command === undefined ? 2 : 0;
    default:
      console.error(`periscope: BAD_ARGUMENT: unknown command ${JSON.stringify(command)}\n\n${topUsage}`);
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (isPeriscopeError(err)) {
    console.error(`periscope: ${err.code}: ${inertText(err.message)}`);
    process.exitCode = err.code === 'BAD_ARGUMENT' ? 2 : 1;
  } else {
    throw err;
  }
}
