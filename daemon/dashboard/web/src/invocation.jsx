// One invocation: config (masked by evald), jobs with live progress, deployment, events timeline,
// a live log tail of one job's stream, results, and the kill/resume/export actions the caller's
// role allows. One EventSource: /api/v1/stream?invocation=<id>&log=<job>:<stream>.
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  TERMINAL,
  capped,
  deploymentState,
  exitReason,
  fmtNumber,
  fmtTime,
  getJSON,
  getText,
  jobState,
  num,
  post,
  query,
} from './api.js';
import { canAct } from './auth.jsx';
import { useEventStream } from './stream.js';
import { ProgressBar, StateBadge } from './widgets.jsx';

const MAX_EVENTS = 1000;
const MAX_LOG_LINES = 1000;
const STREAMS = ['stdout', 'stderr', 'server'];

function eventText(ev) {
  const parts = [];
  if (ev.fromState || ev.toState) parts.push(`${ev.fromState || '∅'} → ${ev.toState || ''}`);
  if (ev.message) parts.push(ev.message);
  if (ev.actor) parts.push(`by ${ev.actor}`);
  return parts.join(' · ');
}

function Actions({ inv, whoami, onDone }) {
  const [msg, setMsg] = useState('');
  const [dest, setDest] = useState('local');
  if (!canAct(whoami, inv)) return null;
  const id = encodeURIComponent(inv.invocationId);
  const act = async (what, body) => {
    setMsg(`${what}…`);
    try {
      const r = await post(`/api/v1/invocations/${id}/${what}`, body);
      const jobs = r.jobIds ? ` (${r.jobIds.length} jobs)` : '';
      setMsg(`${what}: done${jobs}`);
      onDone();
    } catch (e) {
      setMsg(`${what} refused: ${e.message}`);
    }
  };
  const st = jobState(inv.state);
  return (
    <section aria-labelledby="actions-title" class="actions">
      <h2 id="actions-title">Actions</h2>
      <button type="button" data-action="kill" disabled={TERMINAL.has(st)} onClick={() => act('kill', {})}>
        Kill
      </button>{' '}
      <button type="button" data-action="resume" disabled={!TERMINAL.has(st) || st === 'succeeded'} onClick={() => act('resume', {})}>
        Resume
      </button>{' '}
      <label>
        Export to{' '}
        <select value={dest} onChange={(e) => setDest(e.currentTarget.value)}>
          <option value="local">local</option>
          <option value="mlflow">mlflow</option>
          <option value="wandb">wandb</option>
          <option value="gsheets">gsheets</option>
        </select>
      </label>{' '}
      <button type="button" data-action="export" onClick={() => act('export', { dest })}>
        Export
      </button>
      <p role="status" data-testid="action-status">
        {msg}
      </p>
    </section>
  );
}

function JobsTable({ jobs, selected, onSelect }) {
  return (
    <table class="grid" data-testid="jobs">
      <caption class="sr-only">Jobs</caption>
      <thead>
        <tr>
          <th scope="col">Job</th>
          <th scope="col">Task</th>
          <th scope="col">State</th>
          <th scope="col">Progress</th>
          <th scope="col">Attempt</th>
          <th scope="col">Backend id</th>
          <th scope="col">Backend state</th>
          <th scope="col">Detail</th>
        </tr>
      </thead>
      <tbody>
        {jobs.map((j) => {
          const p = j.progress || {};
          const details = Object.entries(j.backendDetails || {})
            .map(([k, v]) => `${k}=${v}`)
            .join(', ');
          return (
            <tr key={j.jobId} data-job={j.jobId} class={selected === j.jobId ? 'selected' : ''}>
              <th scope="row">
                <a href={`?job=${encodeURIComponent(j.jobId)}`} onClick={(e) => { e.preventDefault(); onSelect(j.jobId); }}>
                  {j.jobId}
                </a>
              </th>
              <td>{j.task}</td>
              <td>
                <StateBadge state={jobState(j.state)} />
                {exitReason(j.exitReason) && exitReason(j.exitReason) !== 'exit code' && (
                  <span class="muted"> ({exitReason(j.exitReason)})</span>
                )}
              </td>
              <td data-testid="job-progress" data-done={num(p.done)}>
                {/* Rate and ETA only while it runs: a finished job's last rate means nothing. */}
                <ProgressBar
                  done={num(p.done)}
                  total={num(p.total)}
                  rate={TERMINAL.has(jobState(j.state)) ? 0 : Number(p.rate || 0)}
                  errors={num(p.errors)}
                />
              </td>
              <td>{j.attempt || 1}</td>
              <td>{j.backendId}</td>
              <td>{details}</td>
              <td>{j.message}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function Results({ results }) {
  const rows = [];
  for (const jr of (results && results.jobs) || []) {
    for (const m of jr.metrics || []) rows.push({ jr, m });
  }
  if (!rows.length) return <p>No results yet.</p>;
  return (
    <table class="grid" data-testid="results">
      <caption class="sr-only">Results</caption>
      <thead>
        <tr>
          <th scope="col">Job</th>
          <th scope="col">Task</th>
          <th scope="col">Metric</th>
          <th scope="col">Score</th>
          <th scope="col" class="num">Value</th>
          <th scope="col" class="num">Stderr</th>
          <th scope="col" class="num">Samples</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(({ jr, m }) => (
          <tr>
            <td>{jr.jobId}</td>
            <td>{m.task}</td>
            <td>{m.metric}</td>
            <td>{m.score}</td>
            <td class="num">{fmtNumber(m.value)}</td>
            <td class="num">{m.stats ? fmtNumber(m.stats.stderr) : ''}</td>
            <td class="num">
              {m.stats ? m.stats.count : ''}
              {jr.partial ? ' (partial)' : ''}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function InvocationPage({ id, search, whoami }) {
  const params = new URLSearchParams(search);
  const [inv, setInv] = useState(null);
  const [error, setError] = useState('');
  const [events, setEvents] = useState([]);
  const [results, setResults] = useState(null);
  const [logLines, setLogLines] = useState([]);
  const [logJob, setLogJob] = useState(params.get('job') || '');
  const [logStream, setLogStream] = useState(params.get('stream') || 'stdout');
  const [eventsLoaded, setEventsLoaded] = useState(false);
  const base = `/api/v1/invocations/${encodeURIComponent(id)}`;

  // The invocation itself: on load, after an action, and shortly after a job or deployment event
  // (one GET per burst of events, for what the events do not carry: exit reason, backend ids).
  const [detailGen, setDetailGen] = useState(0);
  const refetchTimer = useRef(null);
  const refetchSoon = () => {
    clearTimeout(refetchTimer.current);
    refetchTimer.current = setTimeout(() => setDetailGen((n) => n + 1), 150);
  };
  useEffect(() => () => clearTimeout(refetchTimer.current), []);
  useEffect(() => {
    const ctl = new AbortController();
    getJSON(base, ctl.signal)
      .then((d) => {
        setInv(d);
        setError('');
        if (!logJob && d.jobs && d.jobs.length) setLogJob(d.jobs[0].jobId);
      })
      .catch((e) => e.name !== 'AbortError' && setError(e.message));
    return () => ctl.abort();
  }, [id, detailGen]);

  useEffect(() => {
    const ctl = new AbortController();
    getJSON(`${base}/events`, ctl.signal)
      .then((d) => setEvents((d.events || []).slice(-MAX_EVENTS)))
      .catch(() => {})
      .finally(() => setEventsLoaded(true));
    return () => ctl.abort();
  }, [id]);

  const state = inv ? jobState(inv.state) : '';
  const terminal = TERMINAL.has(state);
  useEffect(() => {
    if (!inv) return undefined;
    const ctl = new AbortController();
    getJSON(`${base}/results`, ctl.signal)
      .then(setResults)
      .catch(() => {});
    return () => ctl.abort();
  }, [id, terminal, !!inv]);

  // The tail of the chosen log, then live lines from the stream.
  useEffect(() => {
    if (!logJob) return undefined;
    const ctl = new AbortController();
    setLogLines([]);
    getText(`${base}/logs${query({ job: logJob, stream: logStream, tail: 200 })}`, ctl.signal)
      .then((t) => setLogLines(t ? t.replace(/\n$/, '').split('\n').slice(-MAX_LOG_LINES) : []))
      .catch(() => {});
    return () => ctl.abort();
  }, [id, logJob, logStream]);

  // Opened once the invocation and its stored events are loaded, so it resumes after them.
  const streamUrl = inv && eventsLoaded
    ? `/api/v1/stream${query({ invocation: id, log: logJob ? `${logJob}:${logStream}` : '' })}`
    : null;
  const status = useEventStream(streamUrl, {
    invocation: (s) => {
      if (!s || s.invocationId !== id) return;
      setInv((cur) => {
        if (!cur) return cur;
        const next = { ...cur, ...s };
        // A summary may carry jobs without config; keep the config we have.
        if (!s.configYaml) next.configYaml = cur.configYaml;
        if (!s.jobs) next.jobs = cur.jobs;
        if (!s.deployments) next.deployments = cur.deployments;
        return next;
      });
    },
    event: (ev) => {
      if (!ev || (ev.invocationId && ev.invocationId !== id)) return;
      // How long after evald recorded it the page got it (the browser tests print this).
      const stats = window.evaldDashboard;
      stats.eventLagsMs = capped(stats.eventLagsMs || [], Date.now() - num(ev.timeMs), 100);
      setEvents((list) => (list.some((x) => x.seq === ev.seq) ? list : capped(list, ev, MAX_EVENTS)));
      if (ev.jobId || String(ev.kind || '').startsWith('deployment')) refetchSoon();
      if (ev.jobId && ev.toJobState) {
        setInv((cur) =>
          cur && {
            ...cur,
            jobs: (cur.jobs || []).map((j) => (j.jobId === ev.jobId ? { ...j, state: ev.toJobState } : j)),
          },
        );
      }
    },
    progress: (p) => {
      if (!p || (p.invocationId && p.invocationId !== id)) return;
      setInv((cur) =>
        cur && {
          ...cur,
          jobs: (cur.jobs || []).map((j) =>
            j.jobId === p.jobId
              ? { ...j, progress: { ...(j.progress || {}), done: p.done, total: p.total, errors: p.errors, rate: p.rate } }
              : j,
          ),
        },
      );
    },
    log: (line) => setLogLines((list) => capped(list, line, MAX_LOG_LINES)),
  }, () => events.reduce((m, ev) => Math.max(m, num(ev.seq)), 0));

  if (error) {
    return (
      <section>
        <h1>Invocation {id}</h1>
        <p role="alert" class="error">{error}</p>
      </section>
    );
  }
  if (!inv) return <p>Loading…</p>;
  const jobs = inv.jobs || [];
  return (
    <section aria-labelledby="inv-title">
      <h1 id="inv-title">
        Invocation <span data-testid="invocation-id">{inv.invocationId}</span>{' '}
        <StateBadge state={state} />
      </h1>
      <dl class="facts">
        <dt>Owner</dt>
        <dd>{inv.owner || '—'}</dd>
        <dt>Executor</dt>
        <dd>{inv.executor}</dd>
        <dt>Created</dt>
        <dd>{fmtTime(inv.createdMs)}</dd>
        <dt>Ended</dt>
        <dd>{fmtTime(inv.endedMs) || '—'}</dd>
        <dt>Run dir</dt>
        <dd>
          <code>{inv.runDir}</code>
        </dd>
        <dt>Live updates</dt>
        <dd data-testid="stream-status">{status}</dd>
      </dl>
      <Actions inv={inv} whoami={whoami} onDone={() => setDetailGen((n) => n + 1)} />
      <h2>Jobs</h2>
      <JobsTable jobs={jobs} selected={logJob} onSelect={setLogJob} />
      {(inv.deployments || []).length > 0 && (
        <>
          <h2>Deployment</h2>
          <table class="grid" data-testid="deployments">
            <thead>
              <tr>
                <th scope="col">Deployment</th>
                <th scope="col">Type</th>
                <th scope="col">State</th>
                <th scope="col">URL</th>
                <th scope="col">Backend id</th>
                <th scope="col">Time to healthy</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {inv.deployments.map((d) => (
                <tr>
                  <td>{d.deploymentId}</td>
                  <td>{d.type}</td>
                  <td>
                    <StateBadge state={deploymentState(d.state)} />
                  </td>
                  <td>{d.url}</td>
                  <td>{d.backendId}</td>
                  <td>{d.timeToHealthyMs ? `${(num(d.timeToHealthyMs) / 1000).toFixed(1)} s` : ''}</td>
                  <td>{d.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <h2>Results</h2>
      <Results results={results} />
      <h2 id="log-title">Log</h2>
      <form class="filters" aria-labelledby="log-title" onSubmit={(e) => e.preventDefault()}>
        <label>
          Job{' '}
          <select name="log-job" value={logJob} onChange={(e) => setLogJob(e.currentTarget.value)}>
            {jobs.map((j) => (
              <option value={j.jobId}>
                {j.jobId} ({j.task})
              </option>
            ))}
          </select>
        </label>{' '}
        <label>
          Stream{' '}
          <select name="log-stream" value={logStream} onChange={(e) => setLogStream(e.currentTarget.value)}>
            {STREAMS.filter((s) => s !== 'server' || (inv.deployments || []).length > 0).map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
      </form>
      <pre class="log" data-testid="log" tabIndex="0" aria-label="Log tail">
        {logLines.join('\n')}
      </pre>
      <h2>Events</h2>
      <ol class="events" data-testid="events">
        {events
          .slice()
          .reverse()
          .map((ev) => (
            <li key={ev.seq}>
              <time>{fmtTime(ev.timeMs)}</time> <strong>{ev.kind}</strong> {ev.jobId && <code>{ev.jobId}</code>} {eventText(ev)}
            </li>
          ))}
      </ol>
      <h2>Config</h2>
      <p class="muted">As stored by evald, secrets masked{(inv.secretNames || []).length ? `: ${inv.secretNames.join(', ')}` : ''}.</p>
      <pre class="config" data-testid="config" tabIndex="0" aria-label="Config">
        {inv.configYaml || '(not available)'}
      </pre>
    </section>
  );
}
