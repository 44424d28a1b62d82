// Tiny DOM helpers. Every string goes in through textContent or a property,
// never through HTML parsing: names, files and command lines come from the
// customer's processes and must be treated as hostile. Text also passes
// through inertText, so a bidi override or control character in a name is
// shown as a visible \uNNNN instead of silently reordering what is read.

import { inertText } from '../../shared/export/inert-text.ts';

export type Child = Node | string | number | null | undefined | false;

export interface Attrs {
  class?: string;
  id?: string;
  title?: string;
  type?: string;
  href?: string;
  role?: string;
  for?: string;
  name?: string;
  value?: string;
  placeholder?: string;
  autocomplete?: string;
  download?: string;
  tabindex?: number;
  disabled?: boolean;
  checked?: boolean;
  required?: boolean;
  readonly?: boolean;
  min?: number;
  max?: number;
  step?: number;
  /** aria-* and data-* attributes (values are set with setAttribute, which never parses markup). */
  aria?: Record<string, string>;
  data?: Record<string, string>;
  onclick?: (ev: MouseEvent) => void;
  oninput?: (ev: Event) => void;
  onchange?: (ev: Event) => void;
  onsubmit?: (ev: SubmitEvent) => void;
  onkeydown?: (ev: KeyboardEvent) => void;
}

const URL_SAFE = /^(\/|#|https?:)/;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs | null = null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) setAttrs(el, attrs);
  append(el, ...children);
  return el;
}

export function setAttrs(el: HTMLElement, attrs: Attrs): void {
  if (attrs.class !== undefined) el.className = attrs.class;
  if (attrs.id !== undefined) el.id = attrs.id;
  if (attrs.title !== undefined) el.title = shown(attrs.title);
  if (attrs.role !== undefined) el.setAttribute('role', attrs.role);
  if (attrs.tabindex !== undefined) el.tabIndex = attrs.tabindex;
  if (attrs.href !== undefined) {
    // Only our own paths and fragments; nothing from a target ever becomes a link.
    if (!URL_SAFE.test(attrs.href)) throw new Error(`refusing link ${attrs.href}`);
    el.setAttribute('href', attrs.href);
  }
  if (attrs.download !== undefined) el.setAttribute('download', attrs.download);
  if (attrs.for !== undefined) el.setAttribute('for', attrs.for);
  if (el instanceof HTMLInputElement || el instanceof HTMLButtonElement || el instanceof HTMLSelectElement || el instanceof HTMLTextAreaElement) {
    if (attrs.type !== undefined) el.setAttribute('type', attrs.type);
    if (attrs.name !== undefined) el.name = attrs.name;
    if (attrs.disabled !== undefined) el.disabled = attrs.disabled;
  }
  if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) {
    if (attrs.value !== undefined) el.value = attrs.value;
    if (attrs.placeholder !== undefined) el.placeholder = attrs.placeholder;
    if (attrs.autocomplete !== undefined) el.setAttribute('autocomplete', attrs.autocomplete);
    if (attrs.required !== undefined) el.required = attrs.required;
    if (attrs.readonly !== undefined) el.readOnly = attrs.readonly;
  }
  if (el instanceof HTMLInputElement) {
    if (attrs.checked !== undefined) el.checked = attrs.checked;
    if (attrs.min !== undefined) el.min = String(attrs.min);
    if (attrs.max !== undefined) el.max = String(attrs.max);
    if (attrs.step !== undefined) el.step = String(attrs.step);
  }
  if (el instanceof HTMLOptionElement && attrs.value !== undefined) el.value = attrs.value;
  if (attrs.aria) for (const [k, v] of Object.entries(attrs.aria)) el.setAttribute(`aria-${k}`, v);
  if (attrs.data) for (const [k, v] of Object.entries(attrs.data)) el.dataset[k] = v;
  if (attrs.onclick) el.addEventListener('click', attrs.onclick);
  if (attrs.oninput) el.addEventListener('input', attrs.oninput);
  if (attrs.onchange) el.addEventListener('change', attrs.onchange);
  if (attrs.onsubmit) el.addEventListener('submit', attrs.onsubmit as (ev: Event) => void);
  if (attrs.onkeydown) el.addEventListener('keydown', attrs.onkeydown);
}

export function append(el: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(shown(String(c))) : c);
  }
}

export function clear(el: Node): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function replace(el: Node, ...children: Child[]): void {
  clear(el);
  append(el, ...children);
}

/** Sets text only when it changed (cheap to call every refresh). */
export function setText(el: Node, text: string): void {
  const safe = shown(text);
  if (el.textContent !== safe) el.textContent = safe;
}

/** Text as it may be shown: controls and bidi overrides made visible, line breaks kept. */
export function shown(text: string): string {
  return inertText(text, Number.POSITIVE_INFINITY, { keepLineBreaks: true });
}

export function button(label: Child, onclick: (ev: MouseEvent) => void, attrs: Attrs = {}): HTMLButtonElement {
  return h('button', { type: 'button', ...attrs, onclick }, label);
}

/** A labelled checkbox. */
export function checkbox(label: string, checked: boolean, onchange: (checked: boolean) => void, attrs: Attrs = {}): HTMLLabelElement {
  const input = h('input', { type: 'checkbox', checked, ...attrs });
  input.addEventListener('change', () => onchange(input.checked));
  return h('label', { class: 'check' }, input, ' ', label);
}

let idCounter = 0;
export function uid(prefix: string): string {
  return `${prefix}-${++idCounter}`;
}

/** A labelled field: <label for>text</label><input>. */
export function field(label: string, input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLDivElement {
  if (!input.id) input.id = uid('f');
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hint ? h('span', { class: 'hint' }, hint) : null);
}

export function select<T extends string>(options: { value: T; label: string }[], value: T, onchange: (v: T) => void): HTMLSelectElement {
  const sel = h('select');
  for (const o of options) {
    const opt = h('option', { value: o.value }, o.label);
    if (o.value === value) opt.selected = true;
    sel.appendChild(opt);
  }
  sel.addEventListener('change', () => onchange(sel.value as T));
  return sel;
}

/** Puts `text` on the clipboard; false when the browser would not (the caller says to select and copy). */
export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Not a secure context (plain http on a non-local host): fall back to a selection.
    const area = h('textarea', { readonly: true, class: 'offscreen' });
    area.value = text;
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

/** Saves `content` as a file named `name`, made here (never fetched): a blob URL clicked as a download link. */
export function saveFile(name: string, content: string, type: string): void {
  const url = URL.createObjectURL(new Blob([content], { type: `${type};charset=utf-8` }));
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.className = 'offscreen';
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
}
