// "Is this request from our own pages?" A browser always sends Origin on
// cross-site POSTs and on WebSocket handshakes; it must be the relay's public
// origin, or the origin the browser itself addressed (scheme + Host header) when
// the relay is reached under another name than PERISCOPE_PUBLIC_URL (e.g. by IP).
export function isOwnOrigin(origin: string, publicOrigin: string, host: string | undefined, secure: boolean): boolean {
  if (origin === publicOrigin) return true;
  if (!host) return false;
  return origin === `${secure ? 'https' : 'http'}://${host}`;
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
