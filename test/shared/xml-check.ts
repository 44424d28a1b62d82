// A strict, minimal XML 1.0 well-formedness checker and tree builder for tests.
// Node has no DOMParser and the machine has no xmllint, so this stands in for both:
// it rejects anything a conforming parser would (bad characters, stray '<' or '&',
// ']]>' in text, unknown entities, unbalanced or duplicate-attribute tags) and returns
// the element tree with references decoded, so tests can inspect what a viewer would see.
// DOCTYPE is rejected outright: our SVGs must not have one (it could reference a URL).

export interface XmlElement {
  name: string;
  attributes: Map<string, string>;
  children: XmlNode[];
}
export type XmlNode = XmlElement | string;

export class XmlError extends Error {}

const NAME = /[A-Za-z_:][-A-Za-z0-9._:]*/y;
const SPACE = /[ \t\r\n]+/y;
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' };

function isXmlChar(code: number): boolean {
  return (
    code === 0x9 ||
    code === 0xa ||
    code === 0xd ||
    (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    (code >= 0x10000 && code <= 0x10ffff)
  );
}

class Parser {
  pos = 0;
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }

  fail(message: string): never {
    const line = this.text.slice(0, this.pos).split('\n').length;
    throw new XmlError(`${message} (line ${line}, offset ${this.pos})`);
  }

  startsWith(s: string): boolean {
    return this.text.startsWith(s, this.pos);
  }

  expect(s: string): void {
    if (!this.startsWith(s)) this.fail(`expected ${JSON.stringify(s)}`);
    this.pos += s.length;
  }

  match(re: RegExp): string | undefined {
    re.lastIndex = this.pos;
    const m = re.exec(this.text);
    if (!m) return undefined;
    this.pos += m[0].length;
    return m[0];
  }

  name(): string {
    return this.match(NAME) ?? this.fail('expected a name');
  }

  skipSpace(): boolean {
    return this.match(SPACE) !== undefined;
  }

  until(terminator: string, what: string): string {
    const end = this.text.indexOf(terminator, this.pos);
    if (end < 0) this.fail(`unterminated ${what}`);
    const body = this.text.slice(this.pos, end);
    this.pos = end + terminator.length;
    return body;
  }

  reference(): string {
    this.expect('&');
    const body = this.until(';', 'reference');
    if (body.startsWith('#')) {
      const code = /^#x[0-9a-fA-F]+$/.test(body) ? parseInt(body.slice(2), 16) : /^#[0-9]+$/.test(body) ? parseInt(body.slice(1), 10) : NaN;
      if (!isXmlChar(code)) this.fail(`bad character reference &${body};`);
      return String.fromCodePoint(code);
    }
    const value = PREDEFINED[body];
    if (value === undefined) this.fail(`unknown entity &${body};`);
    return value;
  }

  comment(): void {
    this.expect('<!--');
    const body = this.until('-->', 'comment');
    if (body.includes('--') || body.endsWith('-')) this.fail("'--' inside a comment");
  }

  processingInstruction(): void {
    this.expect('<?');
    const target = this.name();
    if (target.toLowerCase() === 'xml') this.fail('XML declaration not at the start');
    this.until('?>', 'processing instruction');
  }

  misc(): void {
    for (;;) {
      if (this.skipSpace()) continue;
      if (this.startsWith('<!--')) this.comment();
      else if (this.startsWith('<?')) this.processingInstruction();
      else if (this.startsWith('<!DOCTYPE')) this.fail('DOCTYPE is not allowed');
      else return;
    }
  }

  attributeValue(): string {
    const quote = this.text[this.pos];
    if (quote !== '"' && quote !== "'") this.fail('attribute value must be quoted');
    this.pos++;
    let value = '';
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) this.fail('unterminated attribute value');
      if (c === quote) break;
      if (c === '<') this.fail("'<' in attribute value");
      if (c === '&') value += this.reference();
      else {
        // Attribute-value normalization: literal whitespace becomes a space.
        value += c === '\t' || c === '\n' || c === '\r' ? ' ' : c;
        this.pos++;
      }
    }
    this.pos++;
    return value;
  }

  element(): XmlElement {
    this.expect('<');
    const element: XmlElement = { name: this.name(), attributes: new Map(), children: [] };
    for (;;) {
      const spaced = this.skipSpace();
      if (this.startsWith('/>')) {
        this.pos += 2;
        return element;
      }
      if (this.startsWith('>')) {
        this.pos++;
        break;
      }
      if (!spaced) this.fail('expected whitespace before attribute');
      const attribute = this.name();
      this.skipSpace();
      this.expect('=');
      this.skipSpace();
      if (element.attributes.has(attribute)) this.fail(`duplicate attribute ${attribute}`);
      element.attributes.set(attribute, this.attributeValue());
    }
    let text = '';
    const flush = (): void => {
      if (text) element.children.push(text);
      text = '';
    };
    for (;;) {
      if (this.pos >= this.text.length) this.fail(`unclosed <${element.name}>`);
      if (this.startsWith('</')) {
        this.pos += 2;
        const closing = this.name();
        if (closing !== element.name) this.fail(`</${closing}> closes <${element.name}>`);
        this.skipSpace();
        this.expect('>');
        flush();
        return element;
      }
      if (this.startsWith('<![CDATA[')) {
        this.pos += 9;
        text += this.until(']]>', 'CDATA section');
      } else if (this.startsWith('<!--')) this.comment();
      else if (this.startsWith('<?')) this.processingInstruction();
      else if (this.startsWith('<')) {
        flush();
        element.children.push(this.element());
      } else if (this.startsWith('&')) text += this.reference();
      else if (this.startsWith(']]>')) this.fail("']]>' in text");
      else text += this.text[this.pos++];
    }
  }

  document(): XmlElement {
    for (const c of this.text) {
      if (!isXmlChar(c.codePointAt(0)!)) this.fail(`character U+${c.codePointAt(0)!.toString(16)} is not allowed in XML`);
    }
    if (this.startsWith('<?xml')) {
      this.pos += 5;
      this.until('?>', 'XML declaration');
    }
    this.misc();
    if (!this.startsWith('<')) this.fail('expected the root element');
    const root = this.element();
    this.misc();
    if (this.pos !== this.text.length) this.fail('content after the root element');
    return root;
  }
}

export function parseXml(text: string): XmlElement {
  return new Parser(text).document();
}

export function* walkElements(element: XmlElement): Generator<XmlElement> {
  yield element;
  for (const child of element.children) if (typeof child !== 'string') yield* walkElements(child);
}

export function textContent(node: XmlNode): string {
  return typeof node === 'string' ? node : node.children.map(textContent).join('');
}
