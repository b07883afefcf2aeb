// The live sink's page: the channels this agent publishes, and for the
// chosen one a live chart and tape. It connects as any client does, with
// the token given in the address (#token=...), kept for the tab only.
import { Centrifuge } from 'centrifuge';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';

const TAPE_ROWS = 50;      // rows the tape shows
const CHART_POINTS = 2000; // points the chart keeps
const HISTORY = 200;       // points asked for when a channel is opened
const LIVE_AGE_MS = 10000; // a channel with no point for longer is "quiet"

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.hash.slice(1));
if (params.get('token')) {
  sessionStorage.setItem('sluice-live-token', params.get('token'));
  params.delete('token');
  history.replaceState(null, '', location.pathname + (params.toString() ? '#' + params : ''));
}
let token = sessionStorage.getItem('sluice-live-token') || '';

const wsURL = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/connection/websocket';
const client = new Centrifuge([
  { transport: 'websocket', endpoint: wsURL },
  { transport: 'http_stream', endpoint: location.origin + '/connection/http_stream' },
  { transport: 'sse', endpoint: location.origin + '/connection/sse' },
], { token, emulationEndpoint: location.origin + '/emulation' });

function setState(state, text) {
  $('conn').dataset.state = state;
  $('conn').textContent = text || state;
}
client.on('connecting', () => setState('connecting'));
client.on('connected', (ctx) => { setState('connected', 'connected (' + ctx.transport + ')'); refreshChannels(); });
client.on('disconnected', (ctx) => {
  setState('disconnected', 'disconnected: ' + ctx.reason);
  if (ctx.code === 3500 || ctx.code === 109) {
    $('login-why').textContent = token ? 'The token was refused (' + ctx.reason + '): give another.' : 'This endpoint needs a token.';
    $('login').hidden = false;
  }
});
client.on('error', (ctx) => {
  if (ctx.error && ctx.error.code === 109) { // token expired, and nothing to refresh it with
    $('login-why').textContent = 'The token expired: give a new one.';
    $('login').hidden = false;
  }
});
$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token').value.trim();
  sessionStorage.setItem('sluice-live-token', token);
  $('login').hidden = true;
  client.setToken(token);
  client.disconnect();
  client.connect();
});

// Channels: polled from the sink, with a rate from the change in points.
const seen = new Map(); // channel -> {points, at}
let selected = params.get('channel') || '';

async function refreshChannels() {
  if (client.state !== 'connected') return;
  let list;
  try {
    list = (await client.rpc('channels', {})).data || [];
  } catch (e) {
    return;
  }
  const now = Date.now();
  const body = $('channels');
  body.textContent = '';
  $('no-channels').hidden = list.length > 0;
  for (const c of list) {
    const prev = seen.get(c.channel);
    const rate = prev && now > prev.at ? (c.points - prev.points) / ((now - prev.at) / 1000) : 0;
    seen.set(c.channel, { points: c.points, at: now });
    const age = now - Date.parse(c.last_published);
    const tr = document.createElement('tr');
    tr.dataset.channel = c.channel;
    tr.setAttribute('aria-selected', String(c.channel === selected));
    const dot = document.createElement('span');
    dot.className = 'dot';
    dot.dataset.live = String(age < LIVE_AGE_MS);
    dot.title = age < LIVE_AGE_MS ? 'live' : 'quiet';
    cells(tr, [dot, c.channel, String(c.points), rate.toFixed(1), ago(age)]);
    tr.addEventListener('click', () => open(c));
    body.appendChild(tr);
  }
  if (!selected && list.length) {
    open(list.find((c) => c.measurement === 'trades') || list[0]);
  } else if (selected && !view) {
    const c = list.find((c) => c.channel === selected);
    if (c) open(c);
  }
}
setInterval(refreshChannels, 2000);

function cells(tr, values) {
  for (const v of values) {
    const td = document.createElement('td');
    if (v instanceof Node) td.appendChild(v); else td.textContent = v;
    tr.appendChild(td);
  }
}

function ago(ms) {
  if (ms < 1000) return 'now';
  if (ms < 60000) return Math.round(ms / 1000) + 's ago';
  return Math.round(ms / 60000) + 'm ago';
}

// The chosen channel: a subscription, a chart of its price and a tape.
let view = null;

// What a point shows: the price-like field for the chart, the columns
// of the tape, the book top for book tickers.
function shape(measurement) {
  switch (measurement) {
    case 'trades':
      return { price: (p) => p.fields.price, columns: ['time', 'side', 'price', 'quantity', 'trade_id'], id: 'trade_id' };
    case 'agg_trades':
      return { price: (p) => p.fields.price, columns: ['time', 'side', 'price', 'quantity', 'agg_id'], id: 'agg_id' };
    case 'book_ticker':
      return { price: (p) => (p.fields.bid_price + p.fields.ask_price) / 2, columns: ['time', 'bid_price', 'bid_qty', 'ask_price', 'ask_qty'], top: true };
    case 'candles':
      return { price: (p) => p.fields.close, columns: ['time', 'interval', 'open', 'high', 'low', 'close', 'volume'] };
    default:
      return {
        price: (p) => Object.values(p.fields).find((v) => typeof v === 'number'),
        columns: null,
      };
  }
}

function open(c) {
  if (view && view.channel === c.channel) return;
  if (view) { view.sub.unsubscribe(); client.removeSubscription(view.sub); view.plot.destroy(); }
  selected = c.channel;
  const p = new URLSearchParams(location.hash.slice(1));
  p.set('channel', c.channel);
  history.replaceState(null, '', '#' + p);
  for (const tr of $('channels').children) tr.setAttribute('aria-selected', String(tr.dataset.channel === selected));

  const sh = shape(c.measurement);
  $('view').hidden = false;
  $('title').textContent = c.channel;
  $('top').hidden = !sh.top;
  $('tape').textContent = '';
  const head = $('tape-head');
  head.textContent = '';
  const htr = document.createElement('tr');
  cells(htr, sh.columns || ['time', 'fields']);
  head.appendChild(htr);

  const xs = [], ys = [];
  const chart = $('chart');
  chart.textContent = '';
  chart.dataset.points = '0';
  const plot = new uPlot({
    width: Math.max(320, chart.clientWidth || 640), height: 280,
    scales: { x: { time: true } },
    series: [{}, { label: 'price', stroke: '#2f6fde', width: 1.5, points: { show: false } }],
    axes: [{}, { size: 90 }],
  }, [xs, ys], chart);

  const sub = client.newSubscription(c.channel);
  view = { channel: c.channel, sub, plot, xs, ys, sh, offsets: new Set() };
  const v = view;
  sub.on('publication', (ctx) => add(v, ctx));
  sub.on('subscribed', async (ctx) => {
    if (ctx.recovered || v !== view) return;
    // A fresh subscription: fill the chart and tape from the history.
    try {
      const h = await sub.history({ limit: HISTORY, reverse: true });
      if (v !== view) return;
      const pubs = h.publications.slice().reverse();
      const first = pubs.length ? pubs[0].offset : 0;
      // Publications that arrived live while history was asked for are
      // in both: keep the order of the stream, each once.
      const live = v.buffered.filter((p) => p.offset === undefined || p.offset > (pubs.length ? pubs[pubs.length - 1].offset : -1));
      v.buffered = null;
      reset(v);
      for (const p of pubs) if (p.offset >= first) add(v, p);
      for (const p of live) add(v, p);
    } catch (e) {
      v.buffered = null;
    }
  });
  sub.on('error', (ctx) => setState(client.state, 'channel error: ' + (ctx.error && ctx.error.message)));
  v.buffered = [];
  sub.subscribe();
}

function reset(v) {
  v.xs.length = 0; v.ys.length = 0; v.offsets.clear();
  $('tape').textContent = '';
}

function add(v, ctx) {
  if (v.buffered) { v.buffered.push(ctx); }
  if (ctx.offset !== undefined) {
    if (v.offsets.has(ctx.offset)) return;
    v.offsets.add(ctx.offset);
  }
  const p = ctx.data;
  const t = Date.parse(p.time) / 1000;
  const y = v.sh.price(p);
  if (typeof y === 'number' && isFinite(y)) {
    v.xs.push(t); v.ys.push(y);
    if (v.xs.length > CHART_POINTS) { v.xs.shift(); v.ys.shift(); }
    v.plot.setData([v.xs, v.ys]);
    const chart = $('chart');
    chart.dataset.points = String(v.xs.length);
    chart.dataset.lastPrice = String(y);
    chart.dataset.lastTime = p.time;
  }
  if (v.sh.top) {
    const top = $('top');
    top.textContent = '';
    for (const [label, key, cls] of [['bid', 'bid_price', 'buy'], ['ask', 'ask_price', 'sell']]) {
      const s = document.createElement('span');
      s.className = cls;
      s.dataset.field = key;
      s.textContent = label + ' ' + p.fields[key] + ' × ' + p.fields[key.replace('price', 'qty')];
      top.appendChild(s);
    }
  }
  const tr = document.createElement('tr');
  const cols = v.sh.columns;
  if (v.sh.id) tr.dataset.id = String(p.fields[v.sh.id]);
  if (p.tags.side) tr.className = p.tags.side;
  const val = (k) => (k === 'time' ? clock(p.time) : k in p.fields ? String(p.fields[k]) : p.tags[k] ?? '');
  cells(tr, cols ? cols.map(val) : [clock(p.time), JSON.stringify(p.fields)]);
  const tape = $('tape');
  tape.insertBefore(tr, tape.firstChild);
  while (tape.children.length > TAPE_ROWS) tape.removeChild(tape.lastChild);
}

client.connect();

// clock is a point's time of day, UTC, to the millisecond.
function clock(rfc3339) {
  return new Date(rfc3339).toISOString().slice(11, 23);
}
