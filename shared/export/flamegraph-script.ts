// The flame graph's behaviour: click to zoom, reset zoom, search with "Matched: X%",
// hover details. It reads everything from the frames' attributes and <title> text, so
// no profile data is ever written into script source.

export interface FlamegraphGeometry {
  xPad: number;
  /** Width available to frames, in pixels. */
  width: number;
  fontSize: number;
}

export function flamegraphScript(g: FlamegraphGeometry): string {
  return `(function () {
  'use strict';
  var X_PAD = ${Number(g.xPad)}, WIDTH = ${Number(g.width)}, CHAR_WIDTH = ${Number(g.fontSize) * 0.59};
  var frames = Array.prototype.slice.call(document.querySelectorAll('g.f'));
  if (frames.length === 0) return;
  var root = frames[0];
  var details = document.getElementById('details');
  var matched = document.getElementById('matched');
  var unzoomButton = document.getElementById('unzoom');
  var searchButton = document.getElementById('search');
  var searching = false;

  function num(frame, key) { return Number(frame.getAttribute('data-' + key)); }
  function info(frame) { return frame.querySelector('title').textContent; }
  function label(frame) {
    var text = info(frame);
    var end = text.lastIndexOf('\\n');
    return end < 0 ? text : text.slice(0, end);
  }
  function fitText(frame, width) {
    var full = label(frame);
    var room = Math.floor((width - 6) / CHAR_WIDTH);
    frame.querySelector('text').textContent = room < 3 ? '' : full.length <= room ? full : full.slice(0, room - 2) + '..';
  }
  function place(frame, x, width) {
    var rect = frame.querySelector('rect');
    rect.setAttribute('x', x.toFixed(2));
    rect.setAttribute('width', width.toFixed(2));
    frame.querySelector('text').setAttribute('x', (x + 3).toFixed(2));
    fitText(frame, width);
  }

  function zoom(target) {
    var zs = num(target, 's'), zn = num(target, 'n'), zd = num(target, 'd');
    frames.forEach(function (frame) {
      var s = num(frame, 's'), n = num(frame, 'n'), d = num(frame, 'd');
      var ancestor = d < zd && s <= zs && s + n >= zs + zn;
      var inside = d >= zd && s >= zs && s + n <= zs + zn;
      frame.classList.toggle('hide', !ancestor && !inside);
      frame.classList.toggle('parent', ancestor);
      if (ancestor) place(frame, X_PAD, WIDTH);
      else if (inside) place(frame, X_PAD + ((s - zs) / zn) * WIDTH, (n / zn) * WIDTH);
    });
    unzoomButton.classList.toggle('hide', target === root);
  }

  function escapeRegExp(s) { return s.replace(/[.*+?^\${}()|[\\]\\\\]/g, '\\\\$&'); }
  function search(term) {
    var pattern;
    try { pattern = new RegExp(term, 'i'); } catch (e) { pattern = new RegExp(escapeRegExp(term), 'i'); }
    var spans = [];
    frames.forEach(function (frame) {
      var hit = pattern.test(label(frame));
      frame.classList.toggle('match', hit);
      if (hit) spans.push([num(frame, 's'), num(frame, 's') + num(frame, 'n')]);
    });
    // Matches nest (a function and its callee can both match): count covered samples once.
    spans.sort(function (a, b) { return a[0] - b[0]; });
    var covered = 0, end = -1;
    spans.forEach(function (span) {
      if (span[0] >= end) { covered += span[1] - span[0]; end = span[1]; }
      else if (span[1] > end) { covered += span[1] - end; end = span[1]; }
    });
    var total = num(root, 'n');
    matched.textContent = 'Matched: ' + (total > 0 ? (100 * covered / total).toFixed(1) : '0.0') + '%';
    matched.classList.remove('hide');
    searchButton.textContent = 'Reset Search';
    searching = true;
  }
  function resetSearch() {
    frames.forEach(function (frame) { frame.classList.remove('match'); });
    matched.classList.add('hide');
    searchButton.textContent = 'Search';
    searching = false;
  }
  function askSearch() {
    var term = window.prompt('Search frames (regular expression, case-insensitive):', '');
    if (term) search(term);
  }

  document.addEventListener('click', function (event) {
    var target = event.target;
    if (!target || !target.closest) return;
    if (target.closest('#unzoom')) return zoom(root);
    if (target.closest('#search')) return searching ? resetSearch() : askSearch();
    var frame = target.closest('g.f');
    if (frame) zoom(frame);
  });
  document.addEventListener('mouseover', function (event) {
    var frame = event.target && event.target.closest ? event.target.closest('g.f') : null;
    details.textContent = frame ? 'Function: ' + info(frame).replace('\\n', ' ') : ' ';
  });
  document.addEventListener('keydown', function (event) {
    if ((event.ctrlKey || event.metaKey) && event.key === 'f') { event.preventDefault(); askSearch(); }
    else if (event.key === 'Escape') { resetSearch(); zoom(root); }
  });
})();`;
}
