// evald's dashboard: header (navigation, who am I, login), then the page for the URL.
// Routes: /  /invocations/<id>[?job=&stream=]  /compare?ids=A,B[,C...]  /tasks
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './style.css';
import { getJSON, takeBoot } from './api.js';
import { AuthBox } from './auth.jsx';
import { InvocationPage } from './invocation.jsx';
import { ListPage } from './list.jsx';
import { installLinkHandler, useLocation } from './router.js';
import { TasksPage } from './tasks.jsx';

// The compare page brings the chart library (most of the page's script): loaded on first visit
// only, so the list and invocation pages start faster.
function LazyCompare(props) {
  const [mod, setMod] = useState(null);
  useEffect(() => {
    import('./compare.jsx').then(setMod);
  }, []);
  return mod ? <mod.ComparePage {...props} /> : <p>Loading…</p>;
}

function App() {
  const loc = useLocation();
  const [whoami, setWhoami] = useState(() => takeBoot('whoami'));
  const [authGen, setAuthGen] = useState(0);
  useEffect(() => {
    if (authGen === 0 && whoami) return;
    getJSON('/api/v1/whoami')
      .then(setWhoami)
      // 401 here is a token evald no longer accepts (revoked, expired): log in again.
      .catch((e) => setWhoami({ user: '', role: 'viewer', anonymous: true, error: e.message }));
  }, [authGen]);

  let page;
  let title = 'Invocations';
  const m = loc.path.match(/^\/invocations\/([^/]+)\/?$/);
  if (m) {
    const id = decodeURIComponent(m[1]);
    title = id;
    page = <InvocationPage key={`${id}:${authGen}`} id={id} search={loc.search} whoami={whoami} />;
  } else if (loc.path === '/compare') {
    title = 'Compare';
    page = <LazyCompare search={loc.search} />;
  } else if (loc.path === '/tasks') {
    title = 'Tasks';
    page = <TasksPage />;
  } else {
    page = <ListPage search={loc.search} />;
  }
  useEffect(() => {
    document.title = `${title} · evald`;
  }, [title]);

  const nav = (href, label, active) => (
    <a href={href} aria-current={active ? 'page' : undefined}>
      {label}
    </a>
  );
  // The list route's shell below is also written by evald (daemon/dashboard/list_html.cc).
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header>
        <nav aria-label="Main">
          <strong class="brand">evald</strong>
          {nav('/', 'Invocations', loc.path === '/' || !!m)}
          {nav('/compare', 'Compare', loc.path === '/compare')}
          {nav('/tasks', 'Tasks', loc.path === '/tasks')}
        </nav>
        <AuthBox whoami={whoami} onChange={() => setAuthGen((n) => n + 1)} />
      </header>
      <main id="main" tabIndex="-1">
        {page}
      </main>
    </>
  );
}

installLinkHandler();
// On the list route #app already holds evald's markup of the first screen; render() reuses the
// elements it finds there and fixes what differs (not hydration: nothing is assumed to match).
// With that markup the browser paints it first (a cached script would otherwise run, and diff
// the 50 rows, before the first frame), and the page's own render follows a frame later.
const root = document.getElementById('app');
if (root.firstElementChild) requestAnimationFrame(() => setTimeout(() => render(<App />, root), 0));
else render(<App />, root);
