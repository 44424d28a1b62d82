// `periscope top`: a live view of where a running Python program spends its
// time, like `py-spy top`. On a terminal it redraws a full-screen table every
// second and takes keys; piped, it prints the header and table once per second
// as plain text, so it can be logged, grepped and tested.
import { readlinkSync } from 'node:fs';
import { PeriscopeError, asErrorCode } from '../shared/errors.ts';
import { type LiveTopRow, samplePeriodUs, TopAccumulator, type TopSortKey, type TopWindow } from '../shared/profile/index.ts';
import { parseArgs, requirePid, usage, type OptionSpec } from './args.ts';
import { Capture, type CaptureProgress, type EndReason } from './capture.ts';
import { captureOptionsFrom, gilFilterFor, samplingSpecs } from './capture-options.ts';
import { inertText } from '../shared/export/inert-text.ts';

const REFRESH_MS = 1000;
/** Piped output is a log: bound each table so a big program does not flood it. */
const PIPED_MAX_ROWS = 50;

const topSpecs: OptionSpec[] = [
  ...samplingSpecs
    .filter((s) => s.name !== 'help')
    .map((s) => {
      if (s.name === 'threads') return { ...s, description: 'no effect in top: rows are functions or lines of every thread (the header counts threads)' };
      if (s.name === 'function') return { ...s, description: 'aggregate by function, not by line (key L toggles); shows the lowest line seen' };
      if (s.name === 'nolineno') return { ...s, description: 'like --function, without line numbers' };
      return s;
    }),
  { name: 'duration', short: 'd', type: 'number', description: 'stop after this many seconds (default: until q, Ctrl-C or the program exits)' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
];

const HELP_TEXT = `Shows the functions (or lines) the program spends its time in, refreshed every second.
%Own and %Total are shares of the samples of the last second in which the function was
running itself / was anywhere on the stack; OwnTime and TotalTime add up since the start
(or the last R). Idle threads are left out unless --idle.

On a terminal: 1-4 sort by %Own, %Total, OwnTime, TotalTime; L switches between lines and
functions; R resets the times; q or Ctrl-C quits. When the output is not a terminal, the
header and the first ${PIPED_MAX_ROWS} rows are printed as plain text every second.`;

interface Column {
  title: string;
  width: number;
  sortBy: TopSortKey;
}

const COLUMNS: Column[] = [
  { title: '%Own', width: 7, sortBy: 'ownPercent' },
  { title: '%Total', width: 8, sortBy: 'totalPercent' },
  { title: 'OwnTime', width: 9, sortBy: 'ownTime' },
  { title: 'TotalTime', width: 10, sortBy: 'totalTime' },
];
const LABEL_GAP = '  ';
const LABEL_TITLE = 'Function (filename:line)';
const NUMBERS_WIDTH = COLUMNS.reduce((sum, c) => sum + c.width, 0) + LABEL_GAP.length;

// --- text that fits ----------------------------------------------------------

// Terminal cells of a code point: East Asian wide characters and most emoji take two.
function cells(codePoint: number): number {
  return (codePoint >= 0x1100 && codePoint <= 0x115f) ||
    (codePoint >= 0x2e80 && codePoint <= 0xa4cf) ||
    (codePoint >= 0xac00 && codePoint <= 0xd7a3) ||
    (codePoint >= 0xf900 && codePoint <= 0xfaff) ||
    (codePoint >= 0xfe30 && codePoint <= 0xfe4f) ||
    (codePoint >= 0xff00 && codePoint <= 0xff60) ||
    (codePoint >= 0xffe0 && codePoint <= 0xffe6) ||
    (codePoint >= 0x1f300 && codePoint <= 0x1faff) ||
    (codePoint >= 0x20000 && codePoint <= 0x3fffd)
    ? 2
    : 1;
}

export function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text) width += cells(ch.codePointAt(0)!);
  return width;
}

/** The end of `text` within `width` cells, '...' marking what was cut. */
function keepEnd(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  const chars = [...text];
  let kept = '';
  let used = 3;
  for (let i = chars.length - 1; i >= 0 && used + cells(chars[i].codePointAt(0)!) <= width; i--) {
    kept = chars[i] + kept;
    used += cells(chars[i].codePointAt(0)!);
  }
  return width >= 3 ? `...${kept}` : kept;
}

/** The start of `text` within `width` cells. */
function keepStart(text: string, width: number): string {
  let kept = '';
  let used = 0;
  for (const ch of text) {
    const w = cells(ch.codePointAt(0)!);
    if (used + w > width) break;
    kept += ch;
    used += w;
  }
  return kept;
}

/** The start of `text` within `width` cells, '...' marking what was cut. */
function keepStartMarked(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  return width >= 3 ? `${keepStart(text, width - 3)}...` : keepStart(text, width);
}

/**
 * `name (file:line)` within `width` cells. What is cut first is what says
 * least: the directories of the path, then the name -- from the start of a
 * qualified name (`Outer.Inner.method` keeps its method), from the end of a
 * plain one -- and only then the file name itself.
 */
export function fitLabel(name: string, location: string, width: number): string {
  const full = `${name} (${location})`;
  if (displayWidth(full) <= width) return full;
  const base = location.slice(location.lastIndexOf('/') + 1);
  const pathRoom = width - displayWidth(name) - 3;
  // '...' plus a partial file name would say less than the file name alone.
  if (pathRoom >= displayWidth(base) + 3) return `${name} (${keepEnd(location, pathRoom)})`;
  if (pathRoom >= displayWidth(base)) return `${name} (${base})`;
  const shorten = (room: number) => (name.includes('.') ? keepEnd(name, room) : keepStartMarked(name, room));
  const nameRoom = width - displayWidth(base) - 3;
  if (nameRoom >= 8) return `${shorten(nameRoom)} (${base})`;
  return shorten(width);
}

/**
 * A file name as a reader wants it: relative to the program's working
 * directory, or from the package root for the standard library and installed
 * packages, else as the interpreter has it.
 */
export function shortFile(file: string, cwd: string | undefined): string {
  if (cwd && cwd !== '/' && file.startsWith(`${cwd}/`)) return file.slice(cwd.length + 1);
  const packages = /\/(?:site|dist)-packages\//.exec(file);
  if (packages) return file.slice(packages.index + packages[0].length);
  const stdlib = /\/lib\/python\d+(?:\.\d+)?\//.exec(file);
  if (stdlib) return file.slice(stdlib.index + stdlib[0].length);
  return file;
}

function percent(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '0.0%';
}

// --- header and table --------------------------------------------------------

interface HeaderInfo {
  commandLine: string;
  version: string;
  rate: number;
  samples: number;
  progress: CaptureProgress;
  window: TopWindow;
}

function headerLines(h: HeaderInfo): string[] {
  const stats = h.progress.stats;
  const lines = [
    `Collecting samples from '${inertText(h.commandLine)}' (python v${inertText(h.version)})`,
    `Total Samples ${h.samples}   Rate ${h.rate} Hz   Late ${percent(stats.late, stats.ticks)}   ` +
      `GIL: ${percent(h.window.gil, h.window.all)}, Active: ${percent(h.window.active, h.window.all)}, ` +
      `Threads: ${h.window.threads}, Processes: ${h.window.processes}`,
  ];
  if (h.progress.lastError) lines.push(`Last error: ${h.progress.lastError.code}: ${inertText(h.progress.lastError.message)}`);
  return lines;
}

interface TableLayout {
  /** Label cells; Infinity for no limit. */
  labelWidth: number;
  maxRows: number;
  windowSamples: number;
  secondsPerSample: number;
  showLines: boolean;
  cwd: string | undefined;
}

function columnTitles(): string {
  return COLUMNS.map((c) => c.title.padStart(c.width)).join('') + LABEL_GAP + LABEL_TITLE;
}

function rowLine(row: LiveTopRow, layout: TableLayout): string {
  const file = shortFile(row.file, layout.cwd);
  const location = layout.showLines && row.line !== null ? `${file}:${row.line}` : file;
  const cellsOfRow = [
    percent(row.windowOwn, layout.windowSamples),
    percent(row.windowTotal, layout.windowSamples),
    `${(row.cumulativeOwn * layout.secondsPerSample).toFixed(2)}s`,
    `${(row.cumulativeTotal * layout.secondsPerSample).toFixed(2)}s`,
  ];
  const numbers = cellsOfRow.map((text, i) => text.padStart(COLUMNS[i].width)).join('');
  // Names and paths come from the target: made inert before they are fitted.
  return numbers + LABEL_GAP + fitLabel(inertText(row.function), inertText(location), layout.labelWidth);
}

/** Column titles, then rows; a last line says how many rows did not fit. */
function tableLines(rows: LiveTopRow[], layout: TableLayout): string[] {
  const lines = [columnTitles()];
  const shown = rows.length > layout.maxRows ? Math.max(0, layout.maxRows - 1) : rows.length;
  for (let i = 0; i < shown; i++) lines.push(rowLine(rows[i], layout));
  if (shown < rows.length) lines.push(`(${rows.length - shown} more rows)`);
  return lines;
}

// --- the terminal ------------------------------------------------------------

const ESC = '\x1b[';
const SORT_NAMES: Record<TopSortKey, string> = { ownPercent: '%Own', totalPercent: '%Total', ownTime: 'OwnTime', totalTime: 'TotalTime' };

/** Full-screen drawing and raw keys; restore() puts the terminal back however top ends. */
class Screen {
  #rawInput = false;
  #active = false;
  readonly #restoreOnExit = () => this.restore();

  enter(onKey: (key: string) => void): void {
    this.#active = true;
    process.on('exit', this.#restoreOnExit);
    // Alternate screen, cursor hidden: on exit the shell's screen comes back untouched.
    process.stdout.write(`${ESC}?1049h${ESC}?25l${ESC}H${ESC}2J`);
    if (process.stdin.isTTY) {
      process.stdin.setRawMode(true);
      this.#rawInput = true;
      process.stdin.setEncoding('utf8');
      process.stdin.on('data', (chunk: string) => {
        // Escape sequences (arrows, function keys) carry digits and letters that are not ours.
        if (chunk.startsWith('\x1b')) return;
        for (const key of chunk) onKey(key);
      });
      process.stdin.resume();
    }
  }

  get rows(): number {
    return process.stdout.rows || 24;
  }

  get columns(): number {
    return process.stdout.columns || 80;
  }

  /** `lines` from the top-left corner; line `titles` in reverse video with `sortTitle` bold. */
  draw(lines: string[], titles: number, sortTitle: string): void {
    if (!this.#active) return;
    // One cell short of the edge: a full line leaves the cursor in the pending-wrap
    // state, where some terminals' erase-line would eat the last character.
    const width = Math.max(1, this.columns - 1);
    const fitted = lines.slice(0, this.rows).map((line) => keepStart(line, width));
    if (titles < fitted.length) fitted[titles] = emphasize(fitted[titles], sortTitle);
    process.stdout.write(`${ESC}H${fitted.join(`${ESC}K\r\n`)}${ESC}K${ESC}J`);
  }

  /** Idempotent, synchronous: safe from an exit handler. */
  restore(): void {
    if (!this.#active) return;
    this.#active = false;
    process.off('exit', this.#restoreOnExit);
    if (this.#rawInput) {
      this.#rawInput = false;
      process.stdin.setRawMode(false);
      process.stdin.pause();
      process.stdin.removeAllListeners('data');
    }
    process.stdout.write(`${ESC}?25h${ESC}?1049l`);
  }
}

/** The titles line in reverse video, with the sort column's title also bold. */
function emphasize(titles: string, sortTitle: string): string {
  const at = titles.indexOf(` ${sortTitle}`) + 1;
  if (at <= 0) return `${ESC}7m${titles}${ESC}0m`;
  const end = at + sortTitle.length;
  return `${ESC}7m${titles.slice(0, at)}${ESC}1m${titles.slice(at, end)}${ESC}22m${titles.slice(end)}${ESC}0m`;
}

// --- the command -------------------------------------------------------------

function targetCwd(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

function endLine(reason: EndReason, pid: number, capture: Capture): string | undefined {
  if (reason === 'target_exited') return `Process ${pid} exited.`;
  if (reason === 'duration') return `Stopped after ${capture.options.duration} s.`;
  return undefined;
}

export async function runTop(argv: string[]): Promise<number> {
  const { options } = parseArgs(argv, topSpecs);
  if (options.help) {
    console.log(usage('top --pid PID [options]', HELP_TEXT, topSpecs));
    return 0;
  }
  const pid = requirePid(options.pid);
  const capture = new Capture(captureOptionsFrom(options, pid));
  const interactive = process.stdout.isTTY === true;
  const gil = gilFilterFor(options.gil === true, capture.target, (line) => process.stderr.write(`${line}\n`));
  const accumulator = new TopAccumulator(capture.builder.profile, { idle: options.idle === true, gil });
  const hideLines = options.nolineno === true;
  const cwd = targetCwd(pid);
  let byFunction = options.function === true || hideLines;
  let sortBy: TopSortKey = 'ownTime';
  let windowStartedMs = Date.now();

  /** Header, a blank line and the table; `lines` bounds it all (undefined: piped, fixed row count). */
  const render = (lines: number | undefined, labelWidth: number): string[] => {
    const window = accumulator.lastWindow;
    const header = headerLines({
      commandLine: capture.target.cmdline,
      version: capture.target.version,
      rate: capture.options.rate,
      samples: accumulator.cumulativeSamples,
      progress: capture.progress,
      window,
    });
    const table = tableLines(accumulator.rows(sortBy, byFunction), {
      labelWidth,
      maxRows: lines === undefined ? PIPED_MAX_ROWS + 1 : Math.max(1, lines - header.length - 2),
      windowSamples: window.counted,
      secondsPerSample: samplePeriodUs(capture.builder.profile) / 1e6,
      showLines: !(hideLines && byFunction),
      cwd,
    });
    return [...header, '', ...table];
  };

  const screen = interactive ? new Screen() : undefined;
  const footer = () =>
    `sort: ${SORT_NAMES[sortBy]} (keys 1-4)   L: by ${byFunction ? 'line' : 'function'}   R: reset times   q: quit`;
  const draw = () => {
    if (screen) {
      const rows = screen.rows;
      const body = render(rows - 1, Math.max(10, screen.columns - 1 - NUMBERS_WIDTH));
      const page = body.slice(0, rows - 1);
      while (page.length < rows - 1) page.push('');
      screen.draw([...page, footer()], body.indexOf(columnTitles()), SORT_NAMES[sortBy]);
    } else {
      process.stdout.write(`${render(undefined, Infinity).join('\n')}\n\n`);
    }
  };

  const refresh = () => {
    capture.pump();
    accumulator.ingest();
    accumulator.endWindow();
    windowStartedMs = Date.now();
    draw();
  };

  const quit = () => void capture.stop();
  const onKey = (key: string) => {
    const column = '1234'.indexOf(key);
    if (column >= 0) sortBy = COLUMNS[column].sortBy;
    else if (key === 'l' || key === 'L') byFunction = !byFunction;
    else if (key === 'r' || key === 'R') accumulator.reset();
    else if (key === 'q' || key === 'Q' || key === '\x03') return quit();
    else return;
    draw();
  };

  // A closed pipe (`periscope top | head`) ends top like q does.
  const onOutputError = () => quit();
  process.stdout.on('error', onOutputError);
  process.on('SIGINT', quit);
  process.on('SIGTERM', quit);
  process.on('SIGHUP', quit);
  const onResize = () => draw();
  let timer: NodeJS.Timeout | undefined;
  let reason: EndReason;
  try {
    screen?.enter(onKey);
    process.stdout.on('resize', onResize);
    capture.start();
    if (screen) draw();
    timer = setInterval(refresh, REFRESH_MS);
    reason = await capture.done;
    clearInterval(timer);
    accumulator.ingest();
    // The last, partial second is worth a table only if it is not a mere sliver.
    if (!screen && Date.now() - windowStartedMs >= REFRESH_MS / 2 && accumulator.openWindowCounted > 0) {
      accumulator.endWindow();
      draw();
    }
  } finally {
    clearInterval(timer);
    screen?.restore();
    process.stdout.off('resize', onResize);
    process.off('SIGINT', quit);
    process.off('SIGTERM', quit);
    process.off('SIGHUP', quit);
  }
  process.stdout.off('error', onOutputError);

  if (reason === 'error') {
    const e = capture.progress.lastError;
    throw new PeriscopeError(asErrorCode(e?.code, 'READ_FAILED'), e?.message ?? 'sampling failed');
  }
  const line = endLine(reason, pid, capture);
  if (line) process.stdout.write(`${line}\n`);
  return 0;
}
