// The one msgpack decoder for bytes that come from someone else: frames from
// agents, browsers and relays, and chunks read back from the store.
//
// msgpackr decodes more than plain msgpack, whatever options it is given:
// record definitions (ext 0x72, then 0x40–0x7f as references to them),
// structured-clone ids and pointers (ext 0x69 / 0x70), bundled strings
// (ext 0x62 and 0xc1), Sets, Errors, RegExps, BigInts and Dates. A pointer
// lets a value stand for data decoded earlier, so a frame of a few hundred
// bytes can decode into a tree that takes seconds and hundreds of megabytes
// to walk, store or re-encode. `structuredClone: false` only turns off 0x69 /
// 0x70; the other extensions are registered globally and cannot be turned
// off per decoder.
//
// So the bytes are checked first by a strict scanner that accepts plain
// msgpack only -- nil, booleans, numbers, strings, binary, lists, maps with
// string keys -- plus exactly two extensions: msgpackr's typed arrays (ext
// 0x74, for profile chunks encoded with `moreTypes`) and its `undefined`
// (fixext 1, type 0, what `encode` writes for a field set to undefined).
// Nothing accepted can refer to earlier data, so every decoded item costs at
// least one input byte and the decoded size is bounded by the input size;
// on top of that, nesting depth and the number of items are capped. Only
// then does msgpackr decode the (now plain) bytes.
import { Unpackr } from 'msgpackr';
import { PeriscopeError } from './errors.ts';

/** Error code for bytes that are not msgpack this project accepts from outside. */
export const MALFORMED_MSGPACK = 'MALFORMED_MSGPACK';

/** Deepest nesting accepted; the protocol's deepest message nests 5 levels. */
export const MAX_DEPTH = 32;
/**
 * Most list elements plus map entries in one value. The largest legitimate
 * frames (process lists, dumps) hold tens of thousands; profile columns are
 * typed arrays, which count as one item however long they are.
 */
export const MAX_ITEMS = 1_000_000;

/** msgpackr's extension for typed arrays: ext data = [code, ...raw bytes]. */
const EXT_TYPED_ARRAY = 0x74;
/** msgpackr's `undefined`: fixext 1 of type 0 (the data byte is ignored). */
const EXT_UNDEFINED = 0x00;

/**
 * Element sizes by msgpackr's typed-array code (its `typedArrays` list):
 * Int8, Uint8, Uint8Clamped, Int16, Uint16, Int32, Uint32, Float32, Float64.
 * Codes 9 and 10 (BigInt64/BigUint64), 16 (ArrayBuffer) and 17 (DataView)
 * are never sent by this project and are refused.
 */
const TYPED_ARRAY_ELEMENT_BYTES: readonly number[] = [1, 1, 1, 2, 2, 4, 4, 4, 8];

/** What msgpackr would make of the extensions it knows, for messages that say what was refused. */
const REFUSED_EXTENSIONS: Record<number, string> = {
  0x72: 'a msgpackr record definition',
  0x69: 'a msgpackr structured-clone id',
  0x70: 'a msgpackr structured-clone pointer to earlier data',
  0x62: 'msgpackr bundled strings',
  0x73: 'a msgpackr Set',
  0x65: 'a msgpackr Error',
  0x78: 'a msgpackr RegExp',
  0x42: 'a msgpackr BigInt',
  0xff: 'a msgpack timestamp',
};

function malformed(message: string): never {
  throw new PeriscopeError(MALFORMED_MSGPACK, message);
}

/** Walks one msgpack value without building it; throws MALFORMED_MSGPACK on anything not accepted. */
class Scanner {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #end: number;
  #pos = 0;
  #items = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#end = bytes.byteLength;
  }

  /** Checks that `bytes` hold exactly one accepted value. */
  scanAll(): void {
    if (this.#end === 0) malformed('the data is empty');
    this.#value(0);
    if (this.#pos !== this.#end) malformed(`${this.#end - this.#pos} bytes follow the value at byte ${this.#pos}; a frame holds exactly one value`);
  }

  #need(n: number): void {
    if (n > this.#end - this.#pos) malformed(`the data ends inside a value at byte ${this.#pos}: ${n} more bytes needed, ${this.#end - this.#pos} left`);
  }

  #skip(n: number): void {
    this.#need(n);
    this.#pos += n;
  }

  #u8(): number {
    this.#need(1);
    return this.#bytes[this.#pos++]!;
  }

  #u16(): number {
    this.#need(2);
    const v = this.#view.getUint16(this.#pos);
    this.#pos += 2;
    return v;
  }

  #u32(): number {
    this.#need(4);
    const v = this.#view.getUint32(this.#pos);
    this.#pos += 4;
    return v;
  }

  /** `n` more items at `depth`, each taking at least `minBytes` bytes. */
  #count(n: number, depth: number, minBytes: number, what: string): void {
    if (depth >= MAX_DEPTH) malformed(`${what} at byte ${this.#pos} is nested deeper than ${MAX_DEPTH} levels`);
    if (n * minBytes > this.#end - this.#pos) malformed(`${what} at byte ${this.#pos} claims ${n} entries but only ${this.#end - this.#pos} bytes are left`);
    this.#items += n;
    if (this.#items > MAX_ITEMS) malformed(`the data holds more than ${MAX_ITEMS} list elements and map entries`);
  }

  #array(n: number, depth: number): void {
    this.#count(n, depth, 1, 'a list');
    for (let i = 0; i < n; i++) this.#value(depth + 1);
  }

  #map(n: number, depth: number): void {
    this.#count(n, depth, 2, 'a map');
    for (let i = 0; i < n; i++) {
      this.#key(depth + 1);
      this.#value(depth + 1);
    }
  }

  /** Map keys are strings: msgpackr would turn other keys into strings, or refuse them, or (for lists) flatten them. */
  #key(depth: number): void {
    const at = this.#pos;
    const t = this.#u8();
    if (t >= 0xa0 && t <= 0xbf) return this.#skip(t & 0x1f);
    if (t === 0xd9) return this.#skip(this.#u8());
    if (t === 0xda) return this.#skip(this.#u16());
    if (t === 0xdb) return this.#skip(this.#u32());
    // Read it as a value first, so a refused extension in key position is named as such.
    this.#pos = at;
    this.#value(depth);
    malformed(`the map key at byte ${at} is not a string (token 0x${t.toString(16)})`);
  }

  #ext(length: number, at: number): void {
    this.#need(1 + length);
    const type = this.#bytes[this.#pos++]!;
    if (type === EXT_TYPED_ARRAY) {
      if (length < 1) malformed(`the typed array at byte ${at} has no type code`);
      const code = this.#bytes[this.#pos]!;
      const size = TYPED_ARRAY_ELEMENT_BYTES[code];
      if (size === undefined) malformed(`the typed array at byte ${at} has type code ${code}, not one of the numeric typed arrays`);
      if ((length - 1) % size !== 0) malformed(`the typed array at byte ${at} holds ${length - 1} bytes, not a whole number of ${size}-byte elements`);
      this.#pos += length;
      return;
    }
    if (type === EXT_UNDEFINED && length === 1) {
      this.#pos += length;
      return;
    }
    const name = REFUSED_EXTENSIONS[type];
    malformed(
      `msgpack extension type 0x${type.toString(16)}${name ? ` (${name})` : ''} at byte ${at} is not accepted: ` +
        'only plain msgpack values and typed arrays are, so that no value can point at earlier data; encode with shared/protocol.ts encode()',
    );
  }

  #value(depth: number): void {
    const at = this.#pos;
    const t = this.#u8();
    if (t <= 0x7f || t >= 0xe0) return; // fixints (msgpackr reads 0x40–0x7f as records only after a record definition, refused below)
    if (t <= 0x8f) return this.#map(t & 0x0f, depth);
    if (t <= 0x9f) return this.#array(t & 0x0f, depth);
    if (t <= 0xbf) return this.#skip(t & 0x1f);
    switch (t) {
      case 0xc0: // nil
      case 0xc2: // false
      case 0xc3: // true
        return;
      case 0xc1:
        return malformed(`token 0xc1 at byte ${at} is never used in msgpack (msgpackr reads it as a reference into bundled strings); encode with shared/protocol.ts encode()`);
      case 0xc4:
        return this.#skip(this.#u8());
      case 0xc5:
        return this.#skip(this.#u16());
      case 0xc6:
        return this.#skip(this.#u32());
      case 0xc7:
        return this.#ext(this.#u8(), at);
      case 0xc8:
        return this.#ext(this.#u16(), at);
      case 0xc9:
        return this.#ext(this.#u32(), at);
      case 0xca: // float 32
      case 0xd2: // int 32
      case 0xce: // uint 32
        return this.#skip(4);
      case 0xcb: // float 64
      case 0xcf: // uint 64
      case 0xd3: // int 64
        return this.#skip(8);
      case 0xcc: // uint 8
      case 0xd0: // int 8
        return this.#skip(1);
      case 0xcd: // uint 16
      case 0xd1: // int 16
        return this.#skip(2);
      case 0xd4:
        return this.#ext(1, at);
      case 0xd5:
        return this.#ext(2, at);
      case 0xd6:
        return this.#ext(4, at);
      case 0xd7:
        return this.#ext(8, at);
      case 0xd8:
        return this.#ext(16, at);
      case 0xd9:
        return this.#skip(this.#u8());
      case 0xda:
        return this.#skip(this.#u16());
      case 0xdb:
        return this.#skip(this.#u32());
      case 0xdc:
        return this.#array(this.#u16(), depth);
      case 0xdd:
        return this.#array(this.#u32(), depth);
      case 0xde:
        return this.#map(this.#u16(), depth);
      default: // 0xdf
        return this.#map(this.#u32(), depth);
    }
  }
}

// No records, no structured clones; maps become plain objects (msgpackr
// renames a `__proto__` key); 64-bit integers become numbers, so no BigInt
// (which JSON.stringify and arithmetic with numbers throw on) gets through.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false, int64AsType: 'number' });

/** Throws MALFORMED_MSGPACK unless `bytes` are one value of the accepted msgpack subset. */
export function checkUntrustedMsgpack(bytes: Uint8Array): void {
  new Scanner(bytes).scanAll();
}

/**
 * Decodes one msgpack value from outside. Throws PeriscopeError
 * (MALFORMED_MSGPACK) for anything but plain msgpack plus typed arrays, for
 * truncated or trailing data, and past the depth and item caps.
 */
export function decodeUntrusted(bytes: Uint8Array): unknown {
  checkUntrustedMsgpack(bytes);
  try {
    return unpackr.unpack(bytes);
  } catch (err) {
    // The scanner accepts only what msgpackr decodes without complaint; this is a disagreement between the two.
    return malformed(`msgpackr could not decode data the scanner accepted: ${(err as Error)?.message ?? String(err)}`);
  }
}
