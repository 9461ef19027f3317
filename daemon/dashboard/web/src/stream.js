// One EventSource per page (GET /api/v1/stream): opened when the page mounts, closed when it
// unmounts or its URL changes. No polling; the browser's EventSource reconnects by itself.
import { useEffect, useRef, useState } from 'preact/hooks';

// Open streams, read by the browser tests to check that navigation closes the previous one.
window.evaldDashboard = window.evaldDashboard || { openStreams: 0, streamUrls: [] };

export function useEventStream(url, handlers) {
  const ref = useRef(handlers);
  ref.current = handlers;
  const [status, setStatus] = useState('connecting');
  useEffect(() => {
    if (!url) return undefined;
    const es = new EventSource(url, { withCredentials: true });
    const stats = window.evaldDashboard;
    stats.openStreams += 1;
    stats.streamUrls.push(url);
    setStatus('connecting');
    es.onopen = () => setStatus('live');
    es.onerror = () => setStatus(es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
    for (const kind of ['invocation', 'event', 'progress', 'log']) {
      es.addEventListener(kind, (e) => {
        const fn = ref.current[kind];
        if (!fn) return;
        let data = e.data;
        if (kind !== 'log' || (data && data[0] === '{')) {
          try {
            data = JSON.parse(e.data);
          } catch (err) {
            return;
          }
        }
        fn(data, e);
      });
    }
    return () => {
      es.close();
      stats.openStreams -= 1;
      stats.streamUrls = stats.streamUrls.filter((u) => u !== url);
    };
  }, [url]);
  return status;
}
