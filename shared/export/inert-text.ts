// Text from a target (function and file names, thread names, command lines)
// and from a relay lands on a terminal or a web page. On a terminal, escape
// sequences in it could clear the screen, retitle the window or hide text;
// anywhere, bidi controls make it read differently from what it is (an
// override shows a name reversed). This makes such text inert: every control
// character (C0, DEL, C1), line/paragraph separator and bidi embedding,
// override, isolate or mark is shown as a visible \xNN / \uNNNN. (HTML and
// SVG escaping is separate: see xml-escape.ts and the DOM's textContent.)
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g;
// A web page may keep line breaks and tabs of multi-line text (a dump):
// there they are layout, not commands.
const UNSAFE_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g;

/** `text` with its unsafe characters made visible; cut to `max` characters (… marks a cut). */
export function inertText(text: string, max = Number.POSITIVE_INFINITY, options: { keepLineBreaks?: boolean } = {}): string {
  let out = text.replace(options.keepLineBreaks ? UNSAFE_BUT_LINES : UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
  if (out.length > max) out = `${out.slice(0, max - 1)}…`;
  return out;
}
