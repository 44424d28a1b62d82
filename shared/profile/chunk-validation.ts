// Chunks arrive from the network, so nothing in them is trusted: a bad index here
// would otherwise surface much later as a crash deep inside an exporter or view.

import { PeriscopeError } from '../errors.ts';
import { type CaptureInfo, NONE, type Profile, type TableSizes, tableSizes } from './model.ts';
import { type ColumnRule, PROFILE_TABLES, type RowTable, TABLE_NAMES, type TableName, TYPED_ARRAYS, columnsOf } from './schema.ts';

const COLUMNS = Object.fromEntries(TABLE_NAMES.map((name) => [name, Object.keys(PROFILE_TABLES[name])])) as Record<TableName, string[]>;

/**
 * `exact`: the chunk must be in the one form chunks are stored in, the form
 * ProfileBuilder.takeChunk makes: every column the schema's typed array (not a
 * list of numbers) and no field the format does not name, at any level. The
 * relay stores and forwards a chunk's bytes as the agent sent them, so it asks
 * for this; applying a chunk to a profile does not need it.
 */
export interface ValidateOptions {
  exact?: boolean;
}

/** The fields of a chunk, in the order takeChunk writes them. */
const CHUNK_FIELDS: readonly string[] = ['base', 'capture', 'strings', ...TABLE_NAMES];
const BASE_FIELDS = ['strings', ...TABLE_NAMES] as const;
const CAPTURE_FIELDS = ['commandLine', 'rateHz', 'startTimeUs', 'durationUs', 'lateSamples'] as const;

export interface ValidChunk {
  capture: CaptureInfo;
  strings: readonly string[];
  tables: Record<TableName, Record<string, ArrayLike<number>>>;
}

const INT_RANGE = { Int32Array: [-(2 ** 31), 2 ** 31 - 1], Uint8Array: [0, 255] } as const;

function invalid(message: string): never {
  throw new PeriscopeError('INVALID_CHUNK', `invalid profile chunk: ${message}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

function field(record: Record<string, unknown>, key: string, where: string): unknown {
  if (!(key in record)) invalid(`${where}.${key} is missing`);
  return record[key];
}

/** In exact mode: refuses a field the chunk format does not have (it would be stored and forwarded unchecked). */
function onlyKnown(record: Record<string, unknown>, known: readonly string[], where: string): void {
  for (const key of Object.keys(record)) {
    if (known.includes(key)) continue;
    const name = /^[A-Za-z_$][\w$]{0,39}$/.test(key) ? key : JSON.stringify(key.slice(0, 40));
    invalid(`${where}${name} is not a field of a profile chunk; chunks are stored as sent, so they may hold the format's fields only`);
  }
}

function validateBase(value: unknown, exact: boolean): TableSizes {
  if (!isRecord(value)) invalid('base must be an object');
  if (exact) onlyKnown(value, BASE_FIELDS, 'base.');
  const sizes = {} as Record<keyof TableSizes, number>;
  for (const key of BASE_FIELDS) {
    const n = field(value, key, 'base');
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) invalid(`base.${key} must be a row count`);
    sizes[key] = n;
  }
  return sizes;
}

function validateCapture(value: unknown, exact: boolean): CaptureInfo {
  if (!isRecord(value)) invalid('capture must be an object');
  if (exact) onlyKnown(value, CAPTURE_FIELDS, 'capture.');
  const commandLine = field(value, 'commandLine', 'capture');
  if (typeof commandLine !== 'string') invalid('capture.commandLine must be a string');
  const numbers: Record<string, number> = {};
  for (const key of ['rateHz', 'startTimeUs', 'durationUs', 'lateSamples']) {
    const n = field(value, key, 'capture');
    if (typeof n !== 'number' || !Number.isFinite(n)) invalid(`capture.${key} must be a finite number`);
    numbers[key] = n;
  }
  if (numbers.rateHz < 0 || numbers.durationUs < 0) invalid('capture rate and duration must not be negative');
  if (!Number.isSafeInteger(numbers.lateSamples) || numbers.lateSamples < 0) {
    invalid('capture.lateSamples must be a count');
  }
  return {
    commandLine,
    rateHz: numbers.rateHz,
    startTimeUs: numbers.startTimeUs,
    durationUs: numbers.durationUs,
    lateSamples: numbers.lateSamples,
  };
}

function validateStrings(value: unknown): string[] {
  if (!Array.isArray(value)) invalid('strings must be an array');
  for (const s of value) if (typeof s !== 'string') invalid('strings must only hold strings');
  return value as string[];
}

function columnValues(value: unknown, rule: ColumnRule, where: string, exact: boolean): ArrayLike<number> {
  if (value instanceof TYPED_ARRAYS[rule.array]) return value;
  if (exact) {
    const is = Array.isArray(value) ? 'a list' : ArrayBuffer.isView(value) ? `a ${value.constructor.name}` : value === null ? 'null' : `a ${typeof value}`;
    invalid(`${where} is ${is}, not the ${rule.array} the format asks for; chunks are stored as sent, so every column must be its typed array (as ProfileBuilder.takeChunk makes them)`);
  }
  if (!Array.isArray(value)) invalid(`${where} must be an ${rule.array} or an array of numbers`);
  const range = rule.array === 'Float64Array' ? undefined : INT_RANGE[rule.array];
  for (const v of value) {
    if (typeof v !== 'number') invalid(`${where} must only hold numbers`);
    if (range && !(Number.isInteger(v) && v >= range[0] && v <= range[1])) invalid(`${where} holds ${v}, not an ${rule.array} value`);
  }
  return value as number[];
}

/**
 * Checks every value of a column against its rule. The rule's parts are read
 * once, not per value: the rules differ in shape, and this loop runs for
 * every row of every chunk the relay stores and every viewer applies.
 */
function checkColumn(values: ArrayLike<number>, rule: ColumnRule, limits: TableSizes, base: TableSizes, where: string): void {
  const finite = rule.array === 'Float64Array';
  const min = rule.min;
  const mask = rule.bitMask;
  const ref = rule.ref;
  const optional = rule.optional === true;
  const earlierRow = rule.earlierRow === true;
  // An earlier row of the same table: below base + row. Any other reference: below the table's size after this chunk.
  const limit = ref === undefined ? 0 : earlierRow ? base[ref] : limits[ref as RowTable];
  const n = values.length;
  for (let row = 0; row < n; row++) {
    const v = values[row]!;
    if (finite && !Number.isFinite(v)) invalid(`${where}[${row}] is not finite`);
    if (min !== undefined && !(v >= min)) invalid(`${where}[${row}] is below ${min}`);
    if (mask !== undefined && (v & ~mask) !== 0) invalid(`${where}[${row}] has unknown flag bits`);
    if (ref === undefined || (optional && v === NONE)) continue;
    if (!(v >= 0 && v < (earlierRow ? limit + row : limit))) invalid(`${where}[${row}] = ${v} references a ${ref} row that does not exist`);
  }
}

function validateTable(
  value: unknown,
  name: TableName,
  limits: TableSizes,
  base: TableSizes,
  exact: boolean,
): Record<string, ArrayLike<number>> {
  if (!isRecord(value)) invalid(`${name} must be an object`);
  if (exact) onlyKnown(value, COLUMNS[name], `${name}.`);
  const columns: Record<string, ArrayLike<number>> = {};
  let rowCount = -1;
  for (const [column, rule] of columnsOf(name)) {
    const where = `${name}.${column}`;
    const values = columnValues(field(value, column, name), rule, where, exact);
    if (rowCount === -1) rowCount = values.length;
    else if (values.length !== rowCount) invalid(`${name} columns differ in length`);
    checkColumn(values, rule, limits, base, where);
    columns[column] = values;
  }
  return columns;
}

export function validateChunk(profile: Profile, chunk: unknown, options: ValidateOptions = {}): ValidChunk {
  const exact = options.exact ?? false;
  if (!isRecord(chunk)) invalid('not an object');
  if (exact) onlyKnown(chunk, CHUNK_FIELDS, 'chunk.');
  const base = validateBase(field(chunk, 'base', 'chunk'), exact);
  const current = tableSizes(profile);
  for (const key of Object.keys(current) as (keyof TableSizes)[]) {
    if (base[key] !== current[key]) {
      throw new PeriscopeError(
        'CHUNK_OUT_OF_SEQUENCE',
        `profile chunk continues ${key} from row ${base[key]} but the profile has ${current[key]} rows`,
      );
    }
  }
  const capture = validateCapture(field(chunk, 'capture', 'chunk'), exact);
  const strings = validateStrings(field(chunk, 'strings', 'chunk'));

  // References may point at rows added by this same chunk, so limits are the sizes after it.
  const raw = {} as Record<TableName, unknown>;
  for (const name of TABLE_NAMES) {
    const table = field(chunk, name, 'chunk');
    if (!isRecord(table)) invalid(`${name} must be an object`);
    raw[name] = table;
  }
  const lengthOf = (name: TableName): number => {
    const firstColumn = COLUMNS[name][0];
    const values = (raw[name] as Record<string, unknown>)[firstColumn];
    // Anything without a usable length is rejected by validateTable below.
    const n = Array.isArray(values) || ArrayBuffer.isView(values) ? (values as { length?: unknown }).length : 0;
    return typeof n === 'number' ? n : 0;
  };
  const limits: TableSizes = {
    ...base,
    strings: base.strings + strings.length,
    frames: base.frames + lengthOf('frames'),
    stacks: base.stacks + lengthOf('stacks'),
    threads: base.threads + lengthOf('threads'),
  };

  const tables = {} as ValidChunk['tables'];
  for (const name of TABLE_NAMES) {
    tables[name] = validateTable(raw[name], name, limits, base, exact);
  }
  return { capture, strings, tables };
}
