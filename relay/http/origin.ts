// "Is this request from our own pages?" A browser always sends Origin on
// cross-site POSTs and on WebSocket handshakes; it must be one of the origins
// the relay was configured with (config.ts allowedOrigins: the public URL's and
// PERISCOPE_TRUSTED_ORIGINS). Never the scheme + Host the request names: a
// DNS-rebinding page reaches the relay under the attacker's own name, and its
// Origin and Host then agree with each other.

/** The refusal text when `origin` is not trusted: names the cause and both ways to fix it. */
export function untrustedOriginMessage(origin: string, publicOrigin: string): string {
  return (
    `requests from pages at ${origin} are refused; use the relay's own pages at ${publicOrigin}, or, if the relay is reached at ${origin}, ` +
    'set PERISCOPE_PUBLIC_URL to that address or add it to PERISCOPE_TRUSTED_ORIGINS'
  );
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
