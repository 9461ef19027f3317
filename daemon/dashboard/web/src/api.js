// The dashboard's only channel to evald: JSON over /api/v1 (docs/dashboard-api.md) and one
// EventSource per page. Every POST carries X-Evald-Request so evald can refuse cross-site forms.

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function check(res) {
  if (res.ok) return res;
  let message = `${res.status} ${res.statusText}`;
  let code = '';
  try {
    const body = await res.json();
    if (body && body.error) message = body.error;
    if (body && body.code) code = body.code;
  } catch (e) {
    // not JSON: keep the status line
  }
  throw new ApiError(res.status, message, code);
}

// What evald put into the page it served for GET / (#evald-boot: whoami and, when `search`
// matches the page's URL, the list's first page), so the first screen needs no API round trip.
// Each part is taken once; everything later is fetched.
let boot = null;
try {
  const el = document.getElementById('evald-boot');
  boot = el ? JSON.parse(el.textContent) : null;
} catch (e) {
  boot = null;
}

export function takeBoot(part, search) {
  if (!boot || !boot[part]) return null;
  if (search !== undefined && boot.search !== search) return null;
  const value = boot[part];
  boot[part] = null;
  return value;
}

export async function getJSON(path, signal) {
  const res = await fetch(path, { credentials: 'same-origin', signal, headers: { Accept: 'application/json' } });
  return (await check(res)).json();
}

export async function getText(path, signal) {
  const res = await fetch(path, { credentials: 'same-origin', signal });
  return (await check(res)).text();
}

export async function post(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-Evald-Request': '1' },
    body: JSON.stringify(body || {}),
  });
  await check(res);
  const text = await res.text();
  return text ? JSON.parse(text) : {};
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

// Proto3 JSON: enums arrive as names (JOB_STATE_RUNNING), int64 as strings, zero values omitted.
export function jobState(s) {
  if (!s || s === 'JOB_STATE_UNSPECIFIED') return 'unknown';
  return String(s).replace(/^JOB_STATE_/, '').toLowerCase();
}

export function deploymentState(s) {
  if (!s || s === 'DEPLOYMENT_STATE_UNSPECIFIED') return 'unknown';
  return String(s).replace(/^DEPLOYMENT_STATE_/, '').toLowerCase();
}

export function exitReason(s) {
  if (!s || s === 'EXIT_REASON_UNSPECIFIED') return '';
  return String(s).replace(/^EXIT_REASON_/, '').toLowerCase().replace(/_/g, ' ');
}

export const TERMINAL = new Set(['succeeded', 'failed', 'killed', 'lost']);

export function num(v) {
  if (v === undefined || v === null || v === '') return 0;
  return Number(v);
}

export function fmtTime(ms) {
  const n = num(ms);
  if (!n) return '';
  const d = new Date(n);
  const pad = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(seconds) {
  if (!isFinite(seconds) || seconds < 0) return '';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function fmtNumber(v, digits = 4) {
  if (v === undefined || v === null || v === '') return '';
  const n = Number(v);
  if (!isFinite(n)) return String(v);
  if (Number.isInteger(n)) return String(n);
  return n.toFixed(digits);
}

// Keeps the last `cap` items: a page left open for a day must not grow.
export function capped(list, item, cap = 1000) {
  const next = list.length >= cap ? list.slice(list.length - cap + 1) : list.slice();
  next.push(item);
  return next;
}
