// Everything a profiled program controls (function names, file names, command lines)
// reaches the SVG through these, so a hostile name stays inert text and the document
// stays well-formed XML.

// XML 1.0 forbids these even as character references, so they cannot be escaped,
// only replaced. Lone surrogates are handled by toWellFormed().
const FORBIDDEN_IN_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

export function xmlSafeChars(s: string): string {
  return s.toWellFormed().replace(FORBIDDEN_IN_XML, '\uFFFD');
}

export function escapeXmlText(s: string): string {
  return xmlSafeChars(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function escapeXmlAttribute(s: string): string {
  // Tabs and newlines would be normalized to spaces by the parser unless written as references.
  return escapeXmlText(s)
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    .replace(/\t/g, '&#9;')
    .replace(/\n/g, '&#10;')
    .replace(/\r/g, '&#13;');
}
