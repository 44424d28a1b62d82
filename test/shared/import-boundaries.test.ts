// Who may import whom. Contracts between processes live in shared/, so the
// relay and the web never reach into agent/ (nor the web into relay/); and the
// relay's domain code throws PeriscopeError and leaves HTTP statuses to
// relay/http (error-status.ts), so its domain folders never import relay/http.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

/** Folder (from the repo root) → folders its files must not import from. */
const FORBIDDEN: [string, string[]][] = [
  ['relay', ['agent', 'web']],
  ['web/src', ['agent', 'relay']],
  ['shared', ['agent', 'relay', 'web']],
  ['relay/captures', ['relay/http']],
  ['relay/sessions', ['relay/http']],
  ['relay/store', ['relay/http']],
  ['relay/auth', ['relay/http']],
];

const IMPORT_RE = /^\s*(?:import|export)\b[^'"]*?\bfrom\s*'([^']+)'|^\s*import\s*'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/gm;

export function importsOf(text: string, file: string): string[] {
  const targets: string[] = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2] ?? m[3]!;
    if (spec.startsWith('.')) targets.push(relative(ROOT, resolve(ROOT, dirname(file), spec)));
  }
  return targets;
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'dist') continue;
    if (statSync(join(ROOT, path)).isDirectory()) out.push(...tsFiles(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

const inside = (path: string, folder: string) => path === folder || path.startsWith(`${folder}/`);

export function violations(file: string, text: string): string[] {
  const out: string[] = [];
  for (const [from, banned] of FORBIDDEN) {
    if (!inside(file, from)) continue;
    for (const target of importsOf(text, file)) {
      for (const b of banned) if (inside(target, b)) out.push(`${file} imports ${target} (${from}/ must not import ${b}/)`);
    }
  }
  return out;
}

test('the checker sees an import that crosses a boundary', () => {
  assert.deepEqual(violations('relay/captures/x.ts', "import { render } from '../../agent/formats.ts';"), [
    'relay/captures/x.ts imports agent/formats.ts (relay/ must not import agent/)',
  ]);
  assert.deepEqual(violations('relay/store/x.ts', "import type { A } from '../http/api-error.ts';"), [
    'relay/store/x.ts imports relay/http/api-error.ts (relay/store/ must not import relay/http/)',
  ]);
  assert.deepEqual(violations('web/src/views/x.ts', "const m = await import('../../../relay/x.ts');"), ['web/src/views/x.ts imports relay/x.ts (web/src/ must not import relay/)']);
  assert.deepEqual(violations('relay/http/x.ts', "import { a } from '../captures/capture-service.ts';"), []);
});

test('no file imports across the boundaries', () => {
  const files = ['relay', 'web/src', 'shared'].flatMap(tsFiles);
  assert.ok(files.length > 50, `only ${files.length} files found`);
  const found = files.flatMap((f) => violations(f, readFileSync(join(ROOT, f), 'utf8')));
  assert.deepEqual(found, []);
});
