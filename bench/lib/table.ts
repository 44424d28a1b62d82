// Plain-text tables: left-aligned first column, right-aligned figures.

export function renderTable(title: string, header: string[], rows: string[][], notes: string[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  const out = [title, line(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of rows) out.push(line(r));
  for (const n of notes) out.push(`  ${n}`);
  return out.join('\n');
}
