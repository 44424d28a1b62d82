// Just enough DOM, built from xml-check's tree, to run the flame graph's inline script
// in node:vm and observe what clicks and searches do. No browser is available here.

import vm from 'node:vm';
import { type XmlElement, textContent, walkElements } from './xml-check.ts';

export class FakeElement {
  readonly tagName: string;
  readonly attributes: Map<string, string>;
  children: (FakeElement | string)[] = [];
  parent: FakeElement | null = null;

  constructor(source: XmlElement, parent: FakeElement | null) {
    this.tagName = source.name;
    this.attributes = new Map(source.attributes);
    this.parent = parent;
    this.children = source.children.map((c) => (typeof c === 'string' ? c : new FakeElement(c, this)));
  }

  getAttribute(name: string): string | null {
    return this.attributes.get(name) ?? null;
  }
  setAttribute(name: string, value: unknown): void {
    this.attributes.set(name, String(value));
  }

  get textContent(): string {
    return this.children.map((c) => (typeof c === 'string' ? c : c.textContent)).join('');
  }
  set textContent(value: string) {
    this.children = [String(value)];
  }

  get classList() {
    const classes = (): Set<string> => new Set((this.getAttribute('class') ?? '').split(/\s+/).filter(Boolean));
    const write = (set: Set<string>): void => this.setAttribute('class', [...set].join(' '));
    return {
      contains: (c: string) => classes().has(c),
      add: (c: string) => write(classes().add(c)),
      remove: (c: string) => {
        const set = classes();
        set.delete(c);
        write(set);
      },
      toggle: (c: string, force?: boolean) => {
        const set = classes();
        const on = force ?? !set.has(c);
        if (on) set.add(c);
        else set.delete(c);
        write(set);
        return on;
      },
    };
  }

  matches(selector: string): boolean {
    const id = /^#([\w-]+)$/.exec(selector);
    if (id) return this.getAttribute('id') === id[1];
    const [tag, cls] = selector.split('.');
    return this.tagName === tag && (cls === undefined || this.classList.contains(cls));
  }

  *descendants(): Generator<FakeElement> {
    for (const c of this.children) {
      if (typeof c === 'string') continue;
      yield c;
      yield* c.descendants();
    }
  }

  querySelector(selector: string): FakeElement | null {
    for (const e of this.descendants()) if (e.matches(selector)) return e;
    return null;
  }
  querySelectorAll(selector: string): FakeElement[] {
    return [...this.descendants()].filter((e) => e.matches(selector));
  }
  closest(selector: string): FakeElement | null {
    for (let e: FakeElement | null = this; e; e = e.parent) if (e.matches(selector)) return e;
    return null;
  }
}

export interface FakeSvgPage {
  root: FakeElement;
  byId(id: string): FakeElement;
  frames(): FakeElement[];
  frameLabelled(label: string): FakeElement;
  dispatch(type: string, event: Record<string, unknown>): void;
  promptAnswer: string | null;
}

export function loadSvg(svg: XmlElement): FakeSvgPage {
  const root = new FakeElement(svg, null);
  const listeners = new Map<string, ((event: unknown) => void)[]>();
  const page: FakeSvgPage = {
    root,
    promptAnswer: null,
    byId: (id) => root.querySelector(`#${id}`) ?? assertNever(`no #${id}`),
    frames: () => root.querySelectorAll('g.f'),
    frameLabelled: (label) =>
      page.frames().find((g) => g.querySelector('title')!.textContent.split('\n')[0] === label) ?? assertNever(`no frame ${label}`),
    dispatch: (type, event) => {
      for (const listener of listeners.get(type) ?? []) listener({ preventDefault() {}, ...event });
    },
  };
  const document = {
    documentElement: root,
    querySelectorAll: (s: string) => root.querySelectorAll(s),
    getElementById: (id: string) => root.querySelector(`#${id}`),
    addEventListener: (type: string, listener: (event: unknown) => void) => {
      listeners.set(type, [...(listeners.get(type) ?? []), listener]);
    },
  };
  const window = { prompt: () => page.promptAnswer };
  const script = [...walkElements(svg)].find((e) => e.name === 'script') ?? assertNever('no script');
  vm.runInNewContext(textContent(script), { document, window });
  return page;
}

function assertNever(message: string): never {
  throw new Error(message);
}
