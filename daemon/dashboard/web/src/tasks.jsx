// Task catalog: GET /api/v1/tasks, filtered in the page.
import { useEffect, useState } from 'preact/hooks';
import { getJSON } from './api.js';

export function TasksPage() {
  const [tasks, setTasks] = useState(null);
  const [error, setError] = useState('');
  const [filter, setFilter] = useState('');
  useEffect(() => {
    const ctl = new AbortController();
    getJSON('/api/v1/tasks', ctl.signal)
      .then((d) => setTasks(d.tasks || []))
      .catch((e) => e.name !== 'AbortError' && setError(e.message));
    return () => ctl.abort();
  }, []);
  const f = filter.toLowerCase();
  const shown = (tasks || []).filter(
    (t) => !f || t.name.toLowerCase().includes(f) || (t.harness || '').toLowerCase().includes(f) || (t.description || '').toLowerCase().includes(f),
  );
  return (
    <section aria-labelledby="tasks-title">
      <h1 id="tasks-title">Tasks</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Filter{' '}
          <input type="search" name="filter" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        </label>{' '}
        {tasks && (
          <span class="muted" aria-live="polite">
            {shown.length} of {tasks.length} tasks
          </span>
        )}
      </form>
      {error && <p role="alert" class="error">{error}</p>}
      {!tasks && !error && <p>Loading…</p>}
      {tasks && (
        <table class="grid" data-testid="tasks">
          <caption class="sr-only">Task catalog</caption>
          <thead>
            <tr>
              <th scope="col">Task</th>
              <th scope="col">Harness</th>
              <th scope="col">Runs</th>
              <th scope="col">Endpoint</th>
              <th scope="col">Needs</th>
              <th scope="col">Description</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((t) => (
              <tr>
                <th scope="row">{t.name}</th>
                <td>{t.harness}</td>
                <td>{t.native ? 'native (evalrun)' : t.container || 'container'}</td>
                <td>{t.endpointType}</td>
                <td>{(t.requiredEnvVars || []).join(', ')}</td>
                <td>{t.description}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
