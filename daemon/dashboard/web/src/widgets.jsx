// Small shared pieces: state shown as text (colour only repeats it) and a progress bar that
// also says its numbers.
import { fmtDuration } from './api.js';

export function StateBadge({ state }) {
  return (
    <span class={`state state-${state}`} data-state={state}>
      {state}
    </span>
  );
}

export function ProgressBar({ done, total, rate, errors }) {
  const pct = total ? Math.min(100, Math.floor((done * 100) / total)) : 0;
  const eta = rate > 0 && total ? fmtDuration((total - done) / rate) : '';
  return (
    <span class="progress">
      <progress max={total || 1} value={done} aria-label={`${done} of ${total} samples`} />{' '}
      <span class="progress-text">
        {done}/{total || '?'} ({pct}%){errors ? `, ${errors} errors` : ''}
        {rate ? `, ${Number(rate).toFixed(1)}/s` : ''}
        {eta ? `, ETA ${eta}` : ''}
      </span>
    </span>
  );
}
