// Compare: the first invocation is the baseline; every other one is compared with it by
// GET /api/v1/compare?ids=A,B (evald's own computation, as `evalctl compare`). A dot chart shows
// each run's value per metric.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { fmtNumber, getJSON } from './api.js';
import { navigate } from './router.js';

const COLORS = ['#1f4e9c', '#b8420f', '#2f7d32', '#7b1fa2', '#00695c', '#5d4037'];

// A p-value readable at both ends: 0.0312, 2.4e-7 (proto3 JSON omits a 0).
function fmtP(p) {
  const n = Number(p || 0);
  if (n === 0) return '0';
  return n < 1e-4 ? n.toExponential(1) : n.toFixed(4);
}

function metricLabel(m) {
  return `${m.task} ${m.metric}${m.score ? `/${m.score}` : ''}`;
}

function Chart({ ids, rows }) {
  const ref = useRef(null);
  useEffect(() => {
    if (!ref.current || !rows.length) return undefined;
    const xs = rows.map((_, i) => i);
    const series = ids.map((_, k) => rows.map((r) => (r.values[k] === undefined ? null : r.values[k])));
    const plot = new uPlot(
      {
        width: Math.min(1000, ref.current.clientWidth || 800),
        height: 260,
        scales: { x: { time: false, range: [-0.5, rows.length - 0.5] } },
        axes: [
          { values: (u, splits) => splits.map((v) => (Number.isInteger(v) && rows[v] ? metricLabel(rows[v].m) : '')), incrs: [1] },
          {},
        ],
        series: [
          { label: 'Metric', value: (u, v) => (v === null || v === undefined || !rows[v] ? '--' : metricLabel(rows[v].m)) },
          ...ids.map((id, k) => ({
            label: id,
            stroke: COLORS[k % COLORS.length],
            width: 0,
            paths: () => null,
            points: { show: true, size: 10, fill: COLORS[k % COLORS.length] },
          })),
        ],
      },
      [xs, ...series],
      ref.current,
    );
    return () => plot.destroy();
  }, [ids.join(','), rows]);
  return <div ref={ref} class="chart" role="img" aria-label="Value of each metric per invocation (the table has the same numbers)" />;
}

export function ComparePage({ search }) {
  const params = new URLSearchParams(search);
  const ids = (params.get('ids') || '').split(',').map((s) => s.trim()).filter(Boolean);
  const [input, setInput] = useState(ids.join(','));
  const [comparisons, setComparisons] = useState(null);
  const [error, setError] = useState('');

  useEffect(() => setInput(ids.join(',')), [search]);
  useEffect(() => {
    if (ids.length < 2) {
      setComparisons(null);
      return undefined;
    }
    const ctl = new AbortController();
    setError('');
    // Two ids answer one CompareResponse; more answer {baseline, comparisons: [...]}.
    getJSON(`/api/v1/compare?ids=${ids.map(encodeURIComponent).join(',')}`, ctl.signal)
      .then((d) => setComparisons(d.comparisons || [d]))
      .catch((e) => e.name !== 'AbortError' && setError(e.message));
    return () => ctl.abort();
  }, [search]);

  // One row per task/metric/score, with the baseline's value and each candidate's.
  const rows = [];
  const byKey = new Map();
  (comparisons || []).forEach((c, k) => {
    for (const m of c.metrics || []) {
      const key = `${m.task}\u0000${m.metric}\u0000${m.score || ''}`;
      let row = byKey.get(key);
      if (!row) {
        row = { m, values: [m.valueA], cmp: [] };
        byKey.set(key, row);
        rows.push(row);
      }
      row.values[k + 1] = m.valueB;
      row.cmp[k] = m;
    }
  });

  return (
    <section aria-labelledby="cmp-title">
      <h1 id="cmp-title">Compare</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(`/compare?ids=${input.split(',').map((s) => encodeURIComponent(s.trim())).filter(Boolean).join(',')}`);
        }}
      >
        <label>
          Invocation ids (baseline first, comma-separated){' '}
          <input name="ids" size="50" value={input} onInput={(e) => setInput(e.currentTarget.value)} />
        </label>{' '}
        <button type="submit">Compare</button>
      </form>
      {ids.length < 2 && <p>Give two or more invocation ids, or select them on the invocation list.</p>}
      {error && <p role="alert" class="error">{error}</p>}
      {comparisons && (
        <>
          <table class="grid" data-testid="compare">
            <caption class="sr-only">Metrics per invocation, difference and significance against the baseline {ids[0]}</caption>
            <thead>
              <tr>
                <th scope="col">Task</th>
                <th scope="col">Metric</th>
                <th scope="col" class="num">
                  <a href={`/invocations/${encodeURIComponent(ids[0])}`}>{ids[0]}</a> (baseline)
                </th>
                {ids.slice(1).map((b) => (
                  <>
                    <th scope="col" class="num">
                      <a href={`/invocations/${encodeURIComponent(b)}`}>{b}</a>
                    </th>
                    <th scope="col" class="num">Difference</th>
                    <th scope="col">Significance</th>
                  </>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr>
                  <td>{r.m.task}</td>
                  <td>
                    {r.m.metric}
                    {r.m.score ? `/${r.m.score}` : ''}
                  </td>
                  <td class="num">{fmtNumber(r.values[0])}</td>
                  {ids.slice(1).map((_, k) => {
                    const c = r.cmp[k];
                    if (!c) return <><td /><td /><td>not in this run</td></>;
                    const diff = Number(c.diff || 0);
                    return (
                      <>
                        <td class="num">{fmtNumber(c.valueB)}</td>
                        <td class="num" data-testid="diff">{`${diff > 0 ? '+' : ''}${fmtNumber(diff)}`}</td>
                        <td title={c.note || ''}>
                          {c.significant ? 'significant' : 'not significant'} (p = {fmtP(c.pValue)}, {c.method || 'none'}
                          {c.pairedSamples ? `, ${c.pairedSamples} paired` : ''}){c.note ? ` — ${c.note}` : ''}
                        </td>
                      </>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
          {(comparisons || []).map((c) =>
            (c.onlyInA || []).length || (c.onlyInB || []).length ? (
              <p class="muted">
                Only in {c.idA}: {(c.onlyInA || []).join(', ') || '—'}; only in {c.idB}: {(c.onlyInB || []).join(', ') || '—'}
              </p>
            ) : null,
          )}
          <Chart ids={ids} rows={rows} />
        </>
      )}
    </section>
  );
}
