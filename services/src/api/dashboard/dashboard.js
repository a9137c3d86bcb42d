/*
 * seckill-mq live dashboard (served at /dashboard, assets under /dashboard/assets/).
 *
 * Charts: Chart.js 4.6.1 (MIT), vendored unmodified as chart.umd.js from the npm package
 * chart.js@4.6.1 (package/dist/chart.umd.js, sha256
 * 338399fb5bafe598d21cfc471b0590b61ceb321a985fade4f68499b151f67fbf); its licence is
 * chart.js.LICENSE.md beside it. No date adapter: the x axes are linear, in seconds before the
 * newest tick.
 *
 * Data: one Server-Sent Event named `tick` every 500 ms from /dashboard/events, whose data is
 * {t, rates, totals, enqueue_ms, backlog, drain_per_s, orders, items, latest, workers, limits}
 * (the contract is in the comment of the Rust handler). Any field may be null or missing: the
 * page shows "–" for it and keeps going.
 *
 * Every tick is recorded as soon as it arrives, also while the tab is hidden (only the drawing
 * of the charts waits until the tab is visible again), and points are placed by the server's
 * time `t`, so nothing is dropped or shifted by a throttled background tab.
 *
 * Elements a browser test can read as plain numbers (digits, optional "-" and ".", no
 * separators; "–" while unknown): #accepted-total, #orders-total, #backlog, #workers-alive,
 * #drain-rate, #requests-rate; #connection reads "live" while the stream is open;
 * #latest-orders tbody tr are the latest orders, newest first.
 */
(function () {
  'use strict';

  var EVENTS_URL = '/dashboard/events';
  var WINDOW_S = 120; // seconds of history on the charts
  var KEEP_MS = (WINDOW_S + 5) * 1000; // history kept (a little more than shown)
  var MAX_POINTS = 2000; // hard cap, whatever the tick rate
  var GAP_MS = 2000; // ticks further apart than this: the lines break (no data in between)
  var STALE_MS = 3000; // no tick for this long while "live": say so
  var RETRY_MIN_MS = 1000;
  var RETRY_MAX_MS = 15000;
  var DASH = '\u2013';

  var STATUSES = ['202', '409', '410', '429', '4xx', '503', '5xx'];
  var STATUS_LABELS = {
    '202': '202 accepted',
    '409': '409 duplicate',
    '410': '410 sold out',
    '429': '429 rate limited',
    '4xx': 'other 4xx',
    '503': '503 not accepted / unknown',
    '5xx': 'other 5xx'
  };
  var ORDER_KEYS = [
    ['confirmed', 'orders-confirmed-n'],
    ['rejected_sold_out', 'orders-sold-out-n'],
    ['rejected_duplicate', 'orders-duplicate-n'],
    ['rejected_invalid', 'orders-invalid-n']
  ];

  // ---- small helpers ----------------------------------------------------------------------

  function $(id) { return document.getElementById(id); }

  function isNum(v) { return typeof v === 'number' && isFinite(v); }

  function numOrNull(v) { return isNum(v) ? v : null; }

  function setText(el, text) {
    if (typeof el === 'string') el = $(el);
    if (el && el.textContent !== text) el.textContent = text;
  }

  // A plain integer ("12345"), or a dash when unknown.
  function plainInt(v) { return isNum(v) ? String(Math.round(v)) : DASH; }

  // A rate: one decimal below 10 (when it has one), else an integer. Plain, no separators.
  function plainRate(v) {
    if (!isNum(v)) return DASH;
    if (Math.abs(v) < 10 && Math.round(v) !== v) return v.toFixed(1);
    return String(Math.round(v));
  }

  function plainMs(v) {
    if (!isNum(v)) return DASH;
    if (v < 10) return v.toFixed(2);
    if (v < 100) return v.toFixed(1);
    return String(Math.round(v));
  }

  // Sum of the numeric values of an object (null when it has none).
  function sumValues(obj) {
    if (!obj || typeof obj !== 'object') return null;
    var s = 0, any = false;
    for (var k in obj) {
      if (Object.prototype.hasOwnProperty.call(obj, k) && isNum(obj[k])) { s += obj[k]; any = true; }
    }
    return any ? s : null;
  }

  function pad(n, w) { var s = String(n); while (s.length < w) s = '0' + s; return s; }

  function clock(ms, withMillis) {
    if (!isNum(ms)) return DASH;
    var d = new Date(ms);
    var s = pad(d.getHours(), 2) + ':' + pad(d.getMinutes(), 2) + ':' + pad(d.getSeconds(), 2);
    return withMillis ? s + '.' + pad(d.getMilliseconds(), 3) : s;
  }

  var compact = (typeof Intl !== 'undefined' && Intl.NumberFormat)
    ? new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 })
    : null;
  function axisNumber(v) { return compact ? compact.format(v) : String(v); }

  function cssVar(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name);
    return (v && v.trim()) || fallback;
  }

  // "#16a34a" -> "rgba(22,163,74,a)"
  function alpha(hex, a) {
    var m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
    if (!m) return hex;
    return 'rgba(' + parseInt(m[1], 16) + ',' + parseInt(m[2], 16) + ',' + parseInt(m[3], 16) + ',' + a + ')';
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ---- history ----------------------------------------------------------------------------

  // One entry per tick: {t, rates: {status: n|null}, p50, p99, backlog, drain, accepted};
  // {t, gap: true} marks a hole (the lines break there).
  var history = [];
  var newestT = null;

  function record(d) {
    var t = isNum(d.t) ? d.t : Date.now();
    var last = history.length ? history[history.length - 1] : null;
    if (last && t <= last.t) {
      if (t === last.t) history.pop(); // the same tick again: keep the newer copy
      else history = []; // time went backwards (another server, a clock step): start over
      last = history.length ? history[history.length - 1] : null;
    }
    if (last && t - last.t > GAP_MS) history.push({ t: last.t + 1, gap: true });

    var rates = {};
    var r = d.rates || {};
    for (var i = 0; i < STATUSES.length; i++) rates[STATUSES[i]] = numOrNull(r[STATUSES[i]]);
    var lat = d.enqueue_ms || {};
    history.push({
      t: t,
      rates: rates,
      p50: numOrNull(lat.p50),
      p99: numOrNull(lat.p99),
      backlog: numOrNull(d.backlog),
      drain: numOrNull(d.drain_per_s),
      accepted: rates['202']
    });
    newestT = t;

    var cut = t - KEEP_MS, drop = 0;
    while (drop < history.length && history[drop].t < cut) drop++;
    if (history.length - drop > MAX_POINTS) drop = history.length - MAX_POINTS;
    if (drop > 0) history.splice(0, drop);
  }

  function series(get) {
    var out = new Array(history.length);
    for (var i = 0; i < history.length; i++) {
      var p = history[i];
      out[i] = { x: (p.t - newestT) / 1000, y: p.gap ? null : get(p) };
    }
    return out;
  }

  function peakBacklog() {
    var m = null;
    for (var i = 0; i < history.length; i++) {
      var b = history[i].backlog;
      if (isNum(b) && (m === null || b > m)) m = b;
    }
    return m;
  }

  // ---- charts -----------------------------------------------------------------------------

  var charts = null; // {rates, backlog, latency} once Chart.js is there

  function baseOptions(yTitle) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      normalized: true,
      interaction: { mode: 'index', intersect: false },
      elements: {
        // A dot on the newest point only: "now", and visible from the first tick on.
        point: {
          radius: function (ctx) {
            var data = ctx.dataset && ctx.dataset.data;
            return data && ctx.dataIndex === data.length - 1 ? 2.5 : 0;
          },
          hitRadius: 6,
          hoverRadius: 3
        },
        line: { borderWidth: 1.6, tension: 0.25 }
      },
      scales: {
        x: {
          type: 'linear',
          min: -WINDOW_S,
          max: 0,
          ticks: {
            stepSize: 15,
            maxRotation: 0,
            autoSkipPadding: 10,
            callback: function (v) { return v === 0 ? 'now' : v + ' s'; }
          },
          grid: { color: 'rgba(0,0,0,0.05)' }
        },
        y: {
          beginAtZero: true,
          title: { display: !!yTitle, text: yTitle || '' },
          ticks: { callback: axisNumber, maxTicksLimit: 6 },
          grid: { color: 'rgba(0,0,0,0.06)' }
        }
      },
      plugins: {
        legend: { position: 'bottom', labels: { boxWidth: 12, boxHeight: 12, padding: 12 } },
        tooltip: {
          callbacks: {
            title: function (items) {
              if (!items.length) return '';
              var x = items[0].parsed.x;
              return x === 0 ? 'newest tick' : (-x).toFixed(1) + ' s ago';
            }
          }
        }
      }
    };
  }

  function makeCharts() {
    if (typeof window.Chart !== 'function') {
      $('chart-missing').hidden = false;
      return null;
    }
    var Chart = window.Chart;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.font.size = 12;
    Chart.defaults.color = cssVar('--muted', '#5f6b7a');

    // Answers per second, stacked: the top edge is the request rate.
    var ratesOpts = baseOptions('answers / s');
    ratesOpts.scales.y.stacked = true;
    ratesOpts.scales.y.ticks.precision = 0;
    ratesOpts.plugins.legend.display = false; // the pills above are the legend (click to hide)
    ratesOpts.plugins.tooltip.callbacks.label = function (c) {
      return ' ' + c.dataset.label + ': ' + plainRate(c.parsed.y) + ' /s';
    };
    ratesOpts.plugins.tooltip.itemSort = function (a, b) { return b.datasetIndex - a.datasetIndex; };
    var rates = new Chart($('chart-rates'), {
      type: 'line',
      data: {
        datasets: STATUSES.map(function (s) {
          var c = cssVar('--c-' + s, '#888888');
          return {
            label: STATUS_LABELS[s],
            data: [],
            borderColor: c,
            backgroundColor: alpha(c, 0.35),
            fill: 'stack',
            stack: 'answers'
          };
        })
      },
      options: ratesOpts
    });

    // The story: the backlog builds while accepted/s outruns drain/s, then drains.
    var cBacklog = cssVar('--c-backlog', '#2563eb');
    var cDrain = cssVar('--c-drain', '#0d9488');
    var c202 = cssVar('--c-202', '#16a34a');
    var backlogOpts = baseOptions('queued buys');
    backlogOpts.scales.y.ticks.color = cBacklog;
    backlogOpts.scales.y.ticks.precision = 0;
    backlogOpts.scales.y.title.color = cBacklog;
    backlogOpts.scales.yRate = {
      position: 'right',
      beginAtZero: true,
      title: { display: true, text: 'per second' },
      ticks: { callback: axisNumber, maxTicksLimit: 6, precision: 0 },
      grid: { drawOnChartArea: false }
    };
    backlogOpts.plugins.tooltip.callbacks.label = function (c) {
      var v = c.parsed.y;
      return ' ' + c.dataset.label + ': ' + (c.dataset.yAxisID === 'yRate' ? plainRate(v) + ' /s' : plainInt(v));
    };
    var backlog = new Chart($('chart-backlog'), {
      type: 'line',
      data: {
        datasets: [
          { label: 'backlog (queued buys)', data: [], yAxisID: 'y', borderColor: cBacklog,
            backgroundColor: alpha(cBacklog, 0.18), fill: 'origin', borderWidth: 2 },
          { label: 'accepted / s (202)', data: [], yAxisID: 'yRate', borderColor: c202,
            backgroundColor: c202, borderDash: [5, 4], fill: false },
          { label: 'written to PostgreSQL / s', data: [], yAxisID: 'yRate', borderColor: cDrain,
            backgroundColor: cDrain, fill: false, borderWidth: 2 }
        ]
      },
      options: backlogOpts
    });

    var cP50 = cssVar('--c-p50', '#2563eb');
    var cP99 = cssVar('--c-p99', '#db2777');
    var latencyOpts = baseOptions('ms');
    latencyOpts.plugins.tooltip.callbacks.label = function (c) {
      return ' ' + c.dataset.label + ': ' + plainMs(c.parsed.y) + ' ms';
    };
    var latency = new Chart($('chart-latency'), {
      type: 'line',
      data: {
        datasets: [
          { label: 'p50', data: [], borderColor: cP50, backgroundColor: cP50, fill: false },
          { label: 'p99', data: [], borderColor: cP99, backgroundColor: cP99, fill: false }
        ]
      },
      options: latencyOpts
    });

    return { rates: rates, backlog: backlog, latency: latency };
  }

  function drawCharts() {
    if (!charts || newestT === null) return;
    var ds = charts.rates.data.datasets;
    STATUSES.forEach(function (s, i) {
      ds[i].data = series(function (p) { return p.rates[s]; });
    });
    charts.rates.update('none');

    var b = charts.backlog.data.datasets;
    b[0].data = series(function (p) { return p.backlog; });
    b[1].data = series(function (p) { return p.accepted; });
    b[2].data = series(function (p) { return p.drain; });
    charts.backlog.update('none');

    var l = charts.latency.data.datasets;
    l[0].data = series(function (p) { return p.p50; });
    l[1].data = series(function (p) { return p.p99; });
    charts.latency.update('none');
  }

  // Drawing waits for a frame, and for the tab to be visible; recording never waits.
  var drawPending = false;
  var drawDirty = false;
  function scheduleDraw() {
    drawDirty = true;
    if (document.hidden || drawPending) return;
    drawPending = true;
    window.requestAnimationFrame(function () {
      drawPending = false;
      if (!drawDirty) return;
      drawDirty = false;
      try { drawCharts(); } catch (e) { console.error('dashboard: drawing failed', e); }
    });
  }
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden && drawDirty) scheduleDraw();
  });

  // The rate pills toggle their series on the chart.
  function wirePills() {
    STATUSES.forEach(function (s, i) {
      var b = $('rate-' + s);
      var pill = b && b.parentElement;
      if (!pill) return;
      pill.setAttribute('role', 'button');
      pill.setAttribute('tabindex', '0');
      pill.setAttribute('aria-pressed', 'true');
      pill.title = 'Show or hide ' + STATUS_LABELS[s] + ' on the chart';
      var toggle = function () {
        if (!charts) return;
        var visible = !charts.rates.isDatasetVisible(i);
        charts.rates.setDatasetVisibility(i, visible);
        pill.setAttribute('aria-pressed', String(visible));
        pill.classList.toggle('off', !visible);
        charts.rates.update('none');
      };
      pill.addEventListener('click', toggle);
      pill.addEventListener('keydown', function (e) {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); }
      });
    });
  }

  // ---- numbers and tables -----------------------------------------------------------------

  var itemNames = {};

  function updateNumbers(d) {
    var rates = d.rates || {};
    var totals = d.totals || {};
    var orders = d.orders || {};
    var workers = d.workers || {};
    var limits = d.limits || {};

    setText('server-time', clock(d.t, false));
    setText('requests-rate', plainRate(sumValues(rates)));
    setText('accepted-total', plainInt(totals['202']));
    setText('accepted-rate', plainRate(rates['202']));
    setText('orders-total', plainInt(sumValues(orders)));
    setText('orders-confirmed', plainInt(orders.confirmed));
    setText('backlog', plainInt(d.backlog));
    setText('backlog-peak', plainInt(peakBacklog()));
    setText('drain-rate', plainInt(d.drain_per_s));
    setText('workers-alive', plainInt(workers.alive));

    var members = Array.isArray(workers.members) ? workers.members.filter(function (m) { return typeof m === 'string'; }) : [];
    var wm = $('workers-members');
    setText(wm, members.length ? members.join(', ') : (isNum(workers.alive) ? 'no members listed' : 'unknown'));
    wm.title = members.join('\n');

    STATUSES.forEach(function (s) {
      var b = $('rate-' + s);
      setText(b, plainRate(rates[s]));
      if (b && b.parentElement) b.parentElement.classList.toggle('zero', !(isNum(rates[s]) && rates[s] > 0));
    });

    var lat = d.enqueue_ms || {};
    setText('latency-p50', plainMs(lat.p50));
    setText('latency-p99', plainMs(lat.p99));

    setText('total-409', plainInt(totals['409']));
    setText('total-410', plainInt(totals['410']));
    setText('total-503', plainInt(totals['503']));
    setText('rate-limited', plainInt(limits.rate_limited));

    var all = sumValues(orders) || 0;
    ORDER_KEYS.forEach(function (k) {
      var v = orders[k[0]];
      var n = $(k[1]);
      setText(n, plainInt(v));
      var fill = n && n.parentElement.querySelector('.fill');
      if (fill) fill.style.width = (all > 0 && isNum(v) ? Math.max(0, Math.min(100, 100 * v / all)) : 0) + '%';
    });
  }

  // Keeps one <tr> per key in `tbody`, in the order of `list`.
  function syncRows(tbody, cache, list, keyOf, create, update) {
    var seen = {};
    for (var i = 0; i < list.length; i++) {
      var key = keyOf(list[i], i);
      seen[key] = true;
      var row = cache.get(key);
      var created = false;
      if (!row) { row = create(list[i]); cache.set(key, row); created = true; }
      update(row, list[i], created);
      if (tbody.children[i] !== row) tbody.insertBefore(row, tbody.children[i] || null);
    }
    cache.forEach(function (row, key) {
      if (!seen[key]) { cache.delete(key); if (row.parentNode) row.parentNode.removeChild(row); }
    });
  }

  var itemRows = new Map();
  function createItemRow() {
    var tr = document.createElement('tr');
    var name = el('td', 'name');
    name.appendChild(el('span', 'id'));
    name.appendChild(el('span', 'label'));
    tr.appendChild(name);
    ['initial', 'stock', 'available', 'confirmed', 'rejected'].forEach(function (c) { tr.appendChild(el('td', 'n c-' + c)); });
    var barTd = el('td', 'bar-col');
    var bar = el('div', 'stock-bar');
    bar.appendChild(el('span', 'sold'));
    bar.appendChild(el('span', 'claimed'));
    bar.appendChild(el('span', 'avail'));
    barTd.appendChild(bar);
    tr.appendChild(barTd);
    return tr;
  }
  function updateItemRow(tr, it) {
    var c = tr.children;
    setText(c[0].children[0], isNum(it.id) ? '#' + it.id : '');
    setText(c[0].children[1], typeof it.name === 'string' ? it.name : DASH);
    setText(c[1], plainInt(it.initial));
    setText(c[2], plainInt(it.stock));
    c[2].classList.toggle('zero', it.stock === 0);
    setText(c[3], plainInt(it.available));
    c[3].classList.toggle('zero', it.available === 0);
    setText(c[4], plainInt(it.confirmed));
    setText(c[5], plainInt(it.rejected));

    // sold = initial - stock; claimed by queued buys = stock - available; admitted = available.
    var initial = isNum(it.initial) ? it.initial : null;
    var stock = isNum(it.stock) ? it.stock : null;
    var avail = isNum(it.available) ? it.available : null;
    var sold = initial !== null && stock !== null ? Math.max(0, initial - stock) : 0;
    var claimed = stock !== null && avail !== null ? Math.max(0, stock - avail) : 0;
    var free = avail !== null ? Math.max(0, avail) : 0;
    var whole = Math.max(initial || 0, sold + claimed + free);
    var parts = c[6].firstChild.children;
    [sold, claimed, free].forEach(function (v, i) {
      parts[i].style.width = (whole > 0 ? 100 * v / whole : 0) + '%';
    });
    c[6].firstChild.title = 'sold ' + plainInt(sold) + ' · claimed by queued buys ' + plainInt(claimed) +
      ' · still admitted ' + plainInt(free) + ' of ' + plainInt(initial);
  }

  function updateItems(d) {
    var items = Array.isArray(d.items) ? d.items.filter(function (x) { return x && typeof x === 'object'; }) : [];
    itemNames = {};
    items.forEach(function (it) { if (isNum(it.id) && typeof it.name === 'string') itemNames[it.id] = it.name; });
    syncRows($('items').tBodies[0], itemRows, items,
      function (it, i) { return isNum(it.id) ? 'id' + it.id : 'row' + i; },
      createItemRow, updateItemRow);
    $('items-empty').hidden = items.length > 0;
  }

  var latestRows = new Map();
  var latestPainted = false; // no highlight for the rows of the first tick
  function createLatestRow() {
    var tr = document.createElement('tr');
    tr.appendChild(el('td', 'when'));
    var st = el('td');
    st.appendChild(el('span', 'status-pill'));
    tr.appendChild(st);
    tr.appendChild(el('td', 'item'));
    tr.appendChild(el('td', 'n'));
    tr.appendChild(el('td', 'n'));
    var id = el('td');
    id.appendChild(el('code'));
    tr.appendChild(id);
    return tr;
  }
  function statusText(s) {
    if (typeof s !== 'string' || !s) return DASH;
    return s.replace(/^rejected_/, 'rejected: ').replace(/_/g, ' ');
  }
  function updateLatestRow(tr, o, created) {
    var c = tr.children;
    setText(c[0], clock(o.processed_at, true));
    c[0].title = isNum(o.processed_at) ? new Date(o.processed_at).toISOString() : '';
    var pill = c[1].firstChild;
    setText(pill, statusText(o.status));
    pill.className = 'status-pill' + (typeof o.status === 'string' && /^[a-z_]+$/.test(o.status) ? ' ' + o.status : '');
    var name = isNum(o.item_id) ? itemNames[o.item_id] : undefined;
    setText(c[2], isNum(o.item_id) ? '#' + o.item_id + (name ? ' ' + name : '') : DASH);
    setText(c[3], plainInt(o.qty));
    setText(c[4], plainInt(o.user_id));
    setText(c[5].firstChild, typeof o.request_id === 'string' ? o.request_id : DASH);
    if (created && latestPainted) tr.classList.add('fresh');
  }

  function updateLatest(d) {
    var latest = Array.isArray(d.latest) ? d.latest.filter(function (x) { return x && typeof x === 'object'; }) : [];
    latest = latest.slice(0, 20);
    syncRows($('latest-orders').tBodies[0], latestRows, latest,
      function (o, i) { return typeof o.request_id === 'string' ? 'r' + o.request_id : 'i' + i; },
      createLatestRow, updateLatestRow);
    $('latest-empty').hidden = latest.length > 0;
    latestPainted = true;
  }

  // ---- the stream -------------------------------------------------------------------------

  var source = null;
  var retryMs = RETRY_MIN_MS;
  var retryTimer = null;
  var lastTickAt = 0;
  var connState = '';

  function setConn(state) {
    if (state === connState) return;
    connState = state;
    setText('connection', state);
    $('connection-badge').setAttribute('data-state', state);
    if (state !== 'live') $('stale').hidden = true;
  }

  function onTick(ev) {
    var d;
    try { d = JSON.parse(ev.data); } catch (e) { console.warn('dashboard: a tick that is not JSON', e); return; }
    if (!d || typeof d !== 'object') return;
    lastTickAt = Date.now();
    retryMs = RETRY_MIN_MS;
    setConn('live');
    $('stale').hidden = true;
    record(d);
    // The tables come before the counters so that the latest orders can name their items.
    try { updateItems(d); } catch (e) { console.error('dashboard: items', e); }
    try { updateLatest(d); } catch (e) { console.error('dashboard: latest orders', e); }
    try { updateNumbers(d); } catch (e) { console.error('dashboard: numbers', e); }
    scheduleDraw();
  }

  function connect() {
    retryTimer = null;
    if (typeof window.EventSource !== 'function') { setConn('unsupported'); return; }
    source = new EventSource(EVENTS_URL);
    source.addEventListener('open', function () { retryMs = RETRY_MIN_MS; setConn('live'); });
    source.addEventListener('tick', onTick);
    source.addEventListener('message', onTick); // unnamed events, should the server send any
    source.addEventListener('error', function () {
      setConn('reconnecting');
      // CONNECTING: the browser retries by itself. CLOSED: it gave up (an HTTP error, a wrong
      // content type): retry ourselves, with a growing delay.
      if (source && source.readyState === EventSource.CLOSED) {
        source.close();
        source = null;
        if (!retryTimer) {
          retryTimer = setTimeout(connect, retryMs);
          retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
        }
      }
    });
  }

  // A stream that is open but silent is worth telling.
  setInterval(function () {
    if (connState !== 'live' || !lastTickAt) return;
    var quiet = Date.now() - lastTickAt;
    var stale = $('stale');
    if (quiet > STALE_MS) {
      setText(stale, 'no tick for ' + Math.round(quiet / 1000) + ' s');
      stale.hidden = false;
    } else {
      stale.hidden = true;
    }
  }, 1000);

  function start() {
    setConn('connecting');
    try { charts = makeCharts(); } catch (e) { console.error('dashboard: charts', e); charts = null; }
    wirePills();
    connect();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
