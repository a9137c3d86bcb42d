// k6 load test of POST /buy with many distinct users, each with its own bearer token.
//
//   cargo run --release -p loadtest --bin loadgen -- tokens --users 20000 \
//     --secret "$JWT_SECRET" --out loadtest/k6/tokens.json
//   k6 run -e RATE=1000 -e DURATION=60s loadtest/k6/buy.js
//
// Settings (k6 -e NAME=value, or the environment):
//   BASE_URL   the API (default http://localhost:8080)
//   TOKENS     JSON array of bearer tokens, token i for user i+1 (default ./tokens.json, beside
//              this script)
//   ITEMS      items on sale, ids 1..ITEMS (default 5, the demo sale)
//   SCENARIO   constant (default): RATE requests/s for DURATION;
//              ramp: 0 -> RATE over RAMP, RATE for DURATION, then down over 5s
//   RATE       requests per second (default 500)
//   DURATION   (default 30s); RAMP (default 10s)
//   VUS, MAX_VUS  pre-allocated / most virtual users for the arrival-rate executor (default 50, 1000)
//   P99_MS     the p99 latency threshold in ms (default 500)
//
// Outcomes: 202 accepted (queued), 410 sold out (a fast refusal: expected once an item is gone),
// 503 queue unavailable (the API never answers 202 without the broker's ack), 4xx bad input.
// Counters buy_accepted / buy_sold_out / buy_unavailable / buy_other count them.

import http from 'k6/http';
import { check, fail } from 'k6';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';
import { Counter } from 'k6/metrics';

const BASE_URL = (__ENV.BASE_URL || 'http://localhost:8080').replace(/\/+$/, '');
const TOKENS_PATH = __ENV.TOKENS || './tokens.json';
const ITEMS = positiveInt('ITEMS', 5);
const RATE = positiveInt('RATE', 500);
const DURATION = __ENV.DURATION || '30s';
const RAMP = __ENV.RAMP || '10s';
const VUS = positiveInt('VUS', 50);
const MAX_VUS = positiveInt('MAX_VUS', 1000);
const P99_MS = positiveInt('P99_MS', 500);

function positiveInt(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

// Read once, shared read-only by every VU (no copy per VU).
const tokens = new SharedArray('tokens', () => {
  let text;
  try {
    text = open(TOKENS_PATH);
  } catch (e) {
    throw new Error(`cannot read ${TOKENS_PATH} (${e}); mint tokens with: cargo run --release -p loadtest --bin loadgen -- tokens --users 20000 --secret "$JWT_SECRET" --out loadtest/k6/tokens.json`);
  }
  const list = JSON.parse(text);
  if (!Array.isArray(list) || list.length === 0 || list.some((t) => typeof t !== 'string' || t === '')) {
    throw new Error(`${TOKENS_PATH} must be a non-empty JSON array of token strings`);
  }
  return list;
});

const accepted = new Counter('buy_accepted');
const soldOut = new Counter('buy_sold_out');
const unavailable = new Counter('buy_unavailable');
const other = new Counter('buy_other');

const scenarios = {
  constant: {
    executor: 'constant-arrival-rate',
    rate: RATE,
    timeUnit: '1s',
    duration: DURATION,
    preAllocatedVUs: VUS,
    maxVUs: MAX_VUS,
  },
  ramp: {
    executor: 'ramping-arrival-rate',
    startRate: 0,
    timeUnit: '1s',
    preAllocatedVUs: VUS,
    maxVUs: MAX_VUS,
    stages: [
      { target: RATE, duration: RAMP },
      { target: RATE, duration: DURATION },
      { target: 0, duration: '5s' },
    ],
  },
};
const SCENARIO = __ENV.SCENARIO || 'constant';
if (!(SCENARIO in scenarios)) throw new Error(`SCENARIO must be one of ${Object.keys(scenarios).join(', ')}`);

export const options = {
  scenarios: { buy: scenarios[SCENARIO] },
  // 410 is an answer, not a failure: it is how a sold-out item is refused.
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{expected_response:true}': [`p(99)<${P99_MS}`],
    checks: ['rate>0.99'],
  },
  discardResponseBodies: true,
  summaryTrendStats: ['avg', 'med', 'p(90)', 'p(99)', 'max'],
};

const params = (token) => ({
  headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
  responseCallback: http.expectedStatuses(202, 410),
  tags: { name: 'POST /buy' },
});

export function setup() {
  const res = http.get(`${BASE_URL}/healthz`, { responseCallback: http.expectedStatuses(200) });
  if (res.status !== 200) {
    fail(`${BASE_URL}/healthz: ${res.status ? `HTTP ${res.status}` : res.error}; is the stack up?`);
  }
  console.log(`${tokens.length} tokens, items 1..${ITEMS}, scenario ${SCENARIO}, ${RATE}/s`);
}

export default function () {
  // A number unique across the whole test: user = i mod n, so every user buys before any buys
  // twice; each pass over the users shifts the item, so the first ITEMS passes are all distinct
  // (user, item) pairs. Later passes repeat pairs: duplicates the worker rejects.
  const i = exec.scenario.iterationInTest;
  const n = tokens.length;
  const itemId = 1 + ((i + Math.floor(i / n)) % ITEMS);
  const res = http.post(`${BASE_URL}/buy`, JSON.stringify({ item_id: itemId, qty: 1 }), params(tokens[i % n]));

  if (res.status === 202) accepted.add(1);
  else if (res.status === 410) soldOut.add(1);
  else if (res.status === 503) unavailable.add(1);
  else other.add(1, { status: String(res.status) });

  check(res, { 'status is 202 or 410': (r) => r.status === 202 || r.status === 410 });
}
