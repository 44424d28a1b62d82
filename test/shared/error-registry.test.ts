// shared/errors.ts must list every stable error code the project emits, and
// nothing else. PeriscopeError is type-checked against it, but many codes travel
// as plain strings (wire messages, HTTP bodies, the native addon), so this
// reads the sources for code literals in the places codes are emitted or
// compared, and checks both directions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ERROR_CODES } from '../../shared/errors.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const PRODUCT_DIRS = ['agent', 'relay', 'shared', 'web/src'];
const REGISTRY = 'shared/errors.ts';

/** Codes owned by Node or the OS: read (ENOSPC) or mimicked (MODULE_NOT_FOUND for Node's loader), never Periscope's own. */
const FOREIGN_CODES = new Set(['ENOSPC', 'EDQUOT', 'ENOENT', 'EACCES', 'EPERM', 'ERR_SQLITE_ERROR', 'MODULE_NOT_FOUND']);

// Each pattern's groups hold one code, or a list of quoted codes.
const EMITTING_PATTERNS: RegExp[] = [
  /new PeriscopeError\(\s*'([A-Z][A-Z_]+)'/g,
  /new Refusal\(\d+,\s*'([A-Z][A-Z_]+)'/g,
  /\bcode:\s*'([A-Z][A-Z_]+)'/g,
  /\bcode \?\? '([A-Z][A-Z_]+)'/g,
  /\b(?:code|c) === '([A-Z][A-Z_]+)'/g,
  /errorBody\(\s*'([A-Z][A-Z_]+)'/g,
  /#error\(\w+,\s*'([A-Z][A-Z_]+)'/g,
  /\b(?:errorBox|showError)\(\s*'([A-Z][A-Z_]+)'/g,
  /isPeriscopeError\(\w+,\s*'([A-Z][A-Z_]+)'\)/g,
  /asErrorCode\([^,()]+(?:\([^()]*\))?,\s*'([A-Z][A-Z_]+)'\)/g,
  /export const ([A-Z][A-Z_]+) = '\1'/g,
  /\[((?:'[A-Z][A-Z_]+',?\s*)+)\]\.includes\([\w.]*code\)/g,
];
/** native/src/errors.h: `inline constexpr const char* kNotPython = "NOT_PYTHON";` */
const NATIVE_PATTERN = /constexpr const char\* k\w+ = "([A-Z][A-Z_]+)"/g;

interface Found {
  code: string;
  where: string;
}

export function codesIn(text: string, file: string, patterns: RegExp[]): Found[] {
  const found: Found[] = [];
  for (const pattern of patterns) {
    for (const m of text.matchAll(pattern)) {
      const line = text.slice(0, m.index).split('\n').length;
      for (const code of m[1]!.match(/[A-Z][A-Z_]+/g) ?? []) found.push({ code, where: `${file}:${line}` });
    }
  }
  // HTTP_<status> is the web's own stand-in for an answer without a JSON body (web/src/api.ts).
  return found.filter((f) => !FOREIGN_CODES.has(f.code) && !/^HTTP_\d+$/.test(f.code));
}

function sourceFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (name === 'node_modules' || name === 'dist') continue;
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.ts')) files.push(relative(ROOT, path));
    }
  };
  for (const dir of PRODUCT_DIRS) walk(join(ROOT, dir));
  return files;
}

const files = sourceFiles();
const texts = new Map(files.map((f) => [f, readFileSync(join(ROOT, f), 'utf8')]));
const emitted = [
  ...files.filter((f) => f !== REGISTRY).flatMap((f) => codesIn(texts.get(f)!, f, EMITTING_PATTERNS)),
  ...codesIn(readFileSync(join(ROOT, 'native/src/errors.h'), 'utf8'), 'native/src/errors.h', [NATIVE_PATTERN]),
];

test('the scanner finds a code in each kind of place it looks', () => {
  const sample = [
    "throw new PeriscopeError('NOPE_ONE', 'x');",
    "send({ type: 'error', code: 'NOPE_TWO', message });",
    "if (['NOPE_THREE', 'NOPE_FOUR'].includes(err.code)) return;",
    "export const NOPE_FIVE = 'NOPE_FIVE';",
    "throw new PeriscopeError(asErrorCode(e?.code, 'NOPE_SIX'), m);",
    "if (e?.code === 'ENOSPC') return true;",
  ].join('\n');
  assert.deepEqual(
    codesIn(sample, 'sample.ts', EMITTING_PATTERNS).map((f) => f.code).sort(),
    ['NOPE_FIVE', 'NOPE_FOUR', 'NOPE_ONE', 'NOPE_SIX', 'NOPE_THREE', 'NOPE_TWO'],
  );
  assert.deepEqual(codesIn('inline constexpr const char* kNope = "NOPE_SEVEN";', 'x.h', [NATIVE_PATTERN]).map((f) => f.code), ['NOPE_SEVEN']);
});

test('every error code the sources emit or compare against is in shared/errors.ts', () => {
  // A floor, so a broken pattern cannot make this pass by finding nothing.
  assert.ok(new Set(emitted.map((f) => f.code)).size >= 50, `only ${new Set(emitted.map((f) => f.code)).size} distinct codes found`);
  const unknown = emitted.filter((f) => !Object.hasOwn(ERROR_CODES, f.code));
  assert.deepEqual(
    unknown.map((f) => `${f.code} at ${f.where}`),
    [],
    'add these to ERROR_CODES in shared/errors.ts (with their meaning), or use the registered code that means the same',
  );
});

test('every code in shared/errors.ts is used somewhere in the product (no dead entries)', () => {
  const others = [...texts].filter(([f]) => f !== REGISTRY).map(([, t]) => t);
  others.push(readFileSync(join(ROOT, 'native/src/errors.h'), 'utf8'));
  const unused = Object.keys(ERROR_CODES).filter((code) => !others.some((t) => t.includes(`'${code}'`) || t.includes(`"${code}"`)));
  assert.deepEqual(unused, [], 'these codes are registered but nothing emits them: remove them, or emit them');
});

test('INVALID_ARGUMENT is gone: BAD_ARGUMENT is the one code for a bad value', () => {
  assert.equal(Object.hasOwn(ERROR_CODES, 'INVALID_ARGUMENT'), false);
  const stale = [...texts].filter(([f, t]) => f !== REGISTRY && t.includes('INVALID_ARGUMENT')).map(([f]) => f);
  assert.deepEqual(stale, []);
});
