// `periscope record`: sample a process (or a program we start) and write a
// flame graph, speedscope, raw or chrometrace file, like `py-spy record`.
import { PeriscopeError } from '../shared/errors.ts';
import { inertText } from '../shared/export/inert-text.ts';
import { parseArgs, requirePid, usage, type OptionSpec } from './args.ts';
import { Capture, type CaptureProgress } from './capture.ts';
import { captureOptionsFrom, gilFilterFor, samplingSpecs, viewOptionsFrom } from './capture-options.ts';
import { DEFAULT_FORMAT, FORMAT_NAMES, isFormat, outputFileName, type Format } from '../shared/export/formats.ts';
import { render } from '../shared/export/renderers.ts';
import { attachWhenReady, launch, type Launched } from './launch.ts';
import { writeOutput } from './output-file.ts';

const recordSpecs: OptionSpec[] = [
  ...samplingSpecs.filter((s) => s.name !== 'help'),
  { name: 'duration', short: 'd', type: 'number', description: 'seconds to record (default: until Ctrl-C or the program exits)' },
  { name: 'format', short: 'f', type: 'string', description: `output format: ${FORMAT_NAMES.join(', ')}`, default: DEFAULT_FORMAT },
  { name: 'output', short: 'o', type: 'string', description: 'output file (default: PROGRAM-TIME.EXT)' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
];

function parseFormat(value: unknown): Format {
  if (isFormat(value)) return value;
  throw new PeriscopeError('BAD_ARGUMENT', `--format must be one of ${FORMAT_NAMES.join(', ')}; got ${JSON.stringify(value)}`);
}

function progressLine(p: CaptureProgress): string {
  const late = p.stats.ticks > 0 ? ((100 * p.stats.late) / p.stats.ticks).toFixed(1) : '0.0';
  return `Collected ${p.stats.samples} samples (${p.stats.errors} errors, ${late}% late, ${p.processes} process${p.processes === 1 ? '' : 'es'})`;
}

export async function runRecord(argv: string[]): Promise<number> {
  const { options, rest } = parseArgs(argv, recordSpecs);
  if (options.help) {
    console.log(
      usage(
        'record --pid PID [options]  |  periscope record [options] -- python3 app.py',
        'Samples a running Python program (or one it starts) and writes a profile.',
        recordSpecs,
      ),
    );
    return 0;
  }
  const format = parseFormat(options.format);
  let launched: Launched | undefined;
  let pid: number;
  if (rest.length > 0) {
    if (options.pid !== undefined) throw new PeriscopeError('BAD_ARGUMENT', 'give either --pid or a command after `--`, not both');
    if (options.blocking) {
      // ptrace stops of our own child would reach Node's child reaper, which
      // would take them for the program's exit.
      throw new PeriscopeError('BAD_ARGUMENT', '--blocking cannot be used on a program periscope starts itself; start it separately and use --blocking --pid PID');
    }
    launched = await launch(rest);
    pid = launched.child.pid!;
  } else {
    pid = requirePid(options.pid);
  }
  const captureOptions = captureOptionsFrom(options, pid);
  let capture: Capture;
  try {
    capture = launched ? await attachWhenReady(pid, () => new Capture(captureOptions), launched.exited) : new Capture(captureOptions);
  } catch (err) {
    // Never leave a program we started running behind an error.
    launched?.child.kill('SIGKILL');
    throw err;
  }
  const output = (options.output as string | undefined) ?? outputFileName(capture.target.cmdline, format);
  const view = viewOptionsFrom(options);
  view.gil = gilFilterFor(view.gil === true, capture.target, (line) => process.stderr.write(`${line}\n`));

  const tty = process.stderr.isTTY;
  if (tty) capture.onProgress((p) => process.stderr.write(`\r\x1b[K${progressLine(p)}`));
  process.stderr.write(`Sampling process ${pid} (Python ${inertText(capture.target.version)}) at ${captureOptions.rate} Hz${captureOptions.duration ? ` for ${captureOptions.duration} s` : ''}; press Ctrl-C to stop and write ${output}\n`);

  let interrupted = 0;
  const onSignal = () => {
    // A second Ctrl-C means "really quit": the first one is writing the file.
    if (++interrupted > 1) process.exit(130);
    void capture.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  capture.start();
  const reason = await capture.done;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (tty) process.stderr.write('\n');

  const profile = capture.builder.profile;
  const written = writeOutput(output, render(format, profile, view));
  const p = capture.progress;
  const why = reason === 'target_exited' ? ' (the program exited)' : reason === 'error' && p.lastError ? ` (stopped: ${p.lastError.code}: ${inertText(p.lastError.message)})` : '';
  process.stderr.write(`${progressLine(p)}${why}\nWrote ${format} to ${inertText(written)}\n`);
  if (launched) launched.child.kill('SIGTERM');
  return reason === 'error' ? 1 : 0;
}
