// One EventSource per page (GET /api/v1/stream): opened when the page mounts, closed when it
// unmounts or its URL changes. No polling; the browser's EventSource reconnects by itself.
import { useEffect, useRef, useState } from 'preact/hooks';

// Open streams, read by the browser tests to check that navigation closes the previous one.
window.evaldDashboard = window.evaldDashboard || { openStreams: 0, streamUrls: [] };

// `resumeFrom()`, read when the stream opens, is the seq of the last event the page already has
// (from GET .../events): evald then replays what happened in between (its lastEventId parameter).
// After that the browser's own reconnects send Last-Event-ID.
export function useEventStream(url, handlers, resumeFrom) {
  const ref = useRef(handlers);
  ref.current = handlers;
  const resumeRef = useRef(resumeFrom);
  resumeRef.current = resumeFrom;
  const [status, setStatus] = useState('connecting');
  useEffect(() => {
    if (!url) return undefined;
    const seq = resumeRef.current ? Number(resumeRef.current()) : 0;
    const full = seq > 0 ? `${url}${url.includes('?') ? '&' : '?'}lastEventId=${seq}` : url;
    const es = new EventSource(full, { withCredentials: true });
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
        // A log event's data is the raw line; the others are JSON.
        let data = e.data;
        if (kind !== 'log') {
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
