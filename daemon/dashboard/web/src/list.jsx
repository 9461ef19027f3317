// Invocation list: newest first, filters in the URL (so a filtered view is a link), keyset paging
// with page_token, and rows kept current by the /api/v1/stream `invocation` events.
// evald also writes this page's first screen as HTML into GET / (daemon/dashboard/list_html.cc,
// ListPageHtml, so the rows are on screen before this script runs): a change to the markup here
// (elements, classes, data-testid, columns, links) must be made there too.
import { useEffect, useRef, useState } from 'preact/hooks';
import { fmtTime, getJSON, jobState, num, query, takeBoot } from './api.js';
import { navigate } from './router.js';
import { useEventStream } from './stream.js';
import { ProgressBar, StateBadge } from './widgets.jsx';

const STATES = ['', 'pending', 'submitted', 'running', 'succeeded', 'failed', 'killed', 'lost'];
const FILTERS = ['state', 'executor', 'owner', 'task', 'q'];
// Rows per page; ?limit= (1-1000) in the URL overrides it.
const LIMIT = 50;

function matches(inv, f) {
  if (f.state && jobState(inv.state) !== f.state) return false;
  if (f.executor && (inv.executor || '').toLowerCase() !== f.executor.toLowerCase()) return false;
  if (f.owner && inv.owner !== f.owner) return false;
  if (f.task && !(inv.tasks || []).includes(f.task)) return false;
  if (f.q && !(inv.invocationId || '').includes(f.q)) return false;
  return true;
}

// Sums the jobs' progress (from the rows' jobs, then the stream's progress events) for the
// list's one bar per invocation.
function totals(inv, live) {
  const jobs = {};
  for (const j of inv.jobs || []) jobs[j.jobId] = { done: num(j.progress && j.progress.done), total: num(j.progress && j.progress.total) };
  Object.assign(jobs, live || {});
  let done = 0;
  let total = 0;
  for (const p of Object.values(jobs)) {
    done += num(p.done);
    total += num(p.total);
  }
  return { done, total };
}

function jobCount(inv) {
  const n = inv.jobCount || (inv.jobs || []).length || 0;
  return n === 1 ? '1 job' : `${n} jobs`;
}

export function ListPage({ search }) {
  const params = new URLSearchParams(search);
  const filters = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || '']));
  const pageToken = params.get('page_token') || '';
  const limit = Math.min(1000, Math.max(1, Number(params.get('limit')) || LIMIT));
  const prev = params.get('prev') || ''; // tokens of earlier pages, comma-separated

  const [form, setForm] = useState(filters);
  const [data, setData] = useState(() => {
    const b = takeBoot('list', search);
    return b ? { invocations: b.invocations || [], next: b.nextPageToken || '' } : null;
  });
  // The first page came with the HTML: the first run of the fetch below has nothing to do, and
  // the event stream starts after the last event that page reflects.
  const haveBoot = useRef(data !== null);
  const bootSeq = useRef(takeBoot('seq', search) || 0);
  const [error, setError] = useState('');
  // invocation id -> job id -> {done, total}, only for the rows shown.
  const [progress, setProgress] = useState({});
  const dataRef = useRef(null);
  dataRef.current = data;

  useEffect(() => setForm(filters), [search]);

  useEffect(() => {
    if (haveBoot.current) {
      haveBoot.current = false;
      return undefined;
    }
    const ctl = new AbortController();
    setError('');
    getJSON(`/api/v1/invocations${query({ ...filters, page_token: pageToken, limit })}`, ctl.signal)
      .then((d) => setData({ invocations: d.invocations || [], next: d.nextPageToken || '' }))
      .catch((e) => {
        if (e.name !== 'AbortError') setError(e.message);
      });
    return () => ctl.abort();
  }, [search]);

  const status = useEventStream('/api/v1/stream', {
    progress: (p) => {
      const d = dataRef.current;
      if (!p || !d || !d.invocations.some((x) => x.invocationId === p.invocationId)) return;
      setProgress((m) => {
        const keep = {};
        for (const x of d.invocations) if (m[x.invocationId]) keep[x.invocationId] = m[x.invocationId];
        keep[p.invocationId] = { ...(keep[p.invocationId] || {}), [p.jobId]: { done: p.done, total: p.total } };
        return keep;
      });
    },
    invocation: (inv) => {
      if (!inv || !inv.invocationId) return;
      setData((d) => {
        if (!d) return d;
        const i = d.invocations.findIndex((x) => x.invocationId === inv.invocationId);
        if (i >= 0) {
          const next = d.invocations.slice();
          next[i] = { ...next[i], ...inv };
          return { ...d, invocations: next };
        }
        // A new invocation belongs at the top of the first page only.
        if (pageToken || !matches(inv, filters)) return d;
        return { ...d, invocations: [inv, ...d.invocations].slice(0, limit) };
      });
    },
  }, () => bootSeq.current);

  const keepLimit = params.get('limit') || '';
  const apply = (e) => {
    e.preventDefault();
    navigate(`/${query({ ...form, limit: keepLimit })}`);
  };
  // `prev` keeps the tokens of the pages before this one (newest first), so Newer needs no
  // reverse paging from evald.
  const go = (token, prevList) => navigate(`/${query({ ...filters, limit: keepLimit, page_token: token, prev: prevList })}`);
  const prevTokens = prev ? prev.split(',') : [];

  return (
    <section aria-labelledby="list-title">
      <h1 id="list-title">Invocations</h1>
      <form class="filters" onSubmit={apply} aria-label="Filter invocations">
        <label>
          State{' '}
          <select name="state" value={form.state} onChange={(e) => setForm({ ...form, state: e.currentTarget.value })}>
            {STATES.map((s) => (
              <option value={s}>{s || 'any'}</option>
            ))}
          </select>
        </label>
        {['executor', 'owner', 'task'].map((k) => (
          <label>
            {k[0].toUpperCase() + k.slice(1)}{' '}
            <input name={k} value={form[k]} size="10" onInput={(e) => setForm({ ...form, [k]: e.currentTarget.value })} />
          </label>
        ))}
        <label>
          Invocation id{' '}
          <input type="search" name="q" value={form.q} size="12" onInput={(e) => setForm({ ...form, q: e.currentTarget.value })} />
        </label>
        <button type="submit">Apply</button>
      </form>
      <p class="muted" aria-live="polite">
        Live updates: <span data-testid="stream-status">{status}</span>
      </p>
      {error && <p role="alert" class="error">{error}</p>}
      {!data && !error && <p>Loading…</p>}
      {data && (
        <table class="grid" data-testid="invocations">
          <caption class="sr-only">Invocations, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Invocation</th>
              <th scope="col">State</th>
              <th scope="col">Progress</th>
              <th scope="col">Tasks</th>
              <th scope="col">Executor</th>
              <th scope="col">Owner</th>
              <th scope="col">Created</th>
              <th scope="col">Compare</th>
            </tr>
          </thead>
          <tbody>
            {data.invocations.length === 0 && (
              <tr>
                <td colSpan="8">No invocations.</td>
              </tr>
            )}
            {data.invocations.map((inv) => {
              const t = totals(inv, progress[inv.invocationId]);
              return (
                <tr key={inv.invocationId} data-invocation={inv.invocationId}>
                  <th scope="row">
                    <a href={`/invocations/${encodeURIComponent(inv.invocationId)}`}>{inv.invocationId}</a>
                  </th>
                  <td>
                    <StateBadge state={jobState(inv.state)} />
                  </td>
                  <td data-testid="row-progress" data-done={t.done}>
                    {t.total ? <ProgressBar done={t.done} total={t.total} /> : jobCount(inv)}
                  </td>
                  <td>{(inv.tasks || []).join(', ')}</td>
                  <td>{inv.executor}</td>
                  <td>{inv.owner}</td>
                  <td>
                    <time dateTime={new Date(num(inv.createdMs)).toISOString()}>{fmtTime(inv.createdMs)}</time>
                  </td>
                  <td>
                    <input type="checkbox" name="compare" value={inv.invocationId} aria-label={`Select ${inv.invocationId} to compare`} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={!pageToken} onClick={() => go(prevTokens[prevTokens.length - 1] || '', prevTokens.slice(0, -1).join(','))}>
          ← Newer
        </button>{' '}
        <button type="button" disabled={!data || !data.next} onClick={() => go(data.next, [...prevTokens, pageToken].join(','))}>
          Older →
        </button>{' '}
        <button
          type="button"
          onClick={() => {
            const ids = [...document.querySelectorAll('input[name=compare]:checked')].map((x) => x.value);
            if (ids.length >= 2) navigate(`/compare?ids=${ids.map(encodeURIComponent).join(',')}`);
          }}
        >
          Compare selected
        </button>
      </nav>
    </section>
  );
}
