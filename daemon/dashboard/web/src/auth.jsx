// Who the browser is (GET /api/v1/whoami), the token login box and logout. The token goes to
// POST /api/v1/login once; evald answers with an HttpOnly cookie, so no script keeps it.
import { useState } from 'preact/hooks';
import { post } from './api.js';

// What the team-server rules let this caller do to an invocation.
export function canAct(whoami, inv) {
  if (!whoami || whoami.anonymous) return false;
  if (whoami.role === 'admin') return true;
  if (whoami.role === 'user') return !!inv && inv.owner === whoami.user;
  return false;
}

export function AuthBox({ whoami, onChange }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const login = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await post('/api/v1/login', { token });
      setToken('');
      onChange();
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  const logout = async () => {
    setError('');
    try {
      await post('/api/v1/logout', {});
    } catch (err) {
      setError(err.message);
    }
    onChange();
  };

  if (!whoami) return <div class="auth" aria-live="polite">…</div>;
  if (!whoami.anonymous) {
    return (
      <div class="auth">
        <span data-testid="whoami">
          Signed in as <strong>{whoami.user}</strong> ({whoami.role})
        </span>{' '}
        <button type="button" onClick={logout}>
          Log out
        </button>
        {error && <span role="alert" class="error"> {error}</span>}
      </div>
    );
  }
  return (
    <form class="auth" onSubmit={login} aria-label="Log in">
      <span data-testid="whoami">{whoami.error ? 'Not signed in' : 'Anonymous (read only)'}</span>{' '}
      {whoami.error && <span role="alert" class="error">{whoami.error} </span>}
      <label>
        Token{' '}
        <input
          type="password"
          name="token"
          autocomplete="off"
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
          required
        />
      </label>{' '}
      <button type="submit" disabled={busy}>
        Log in
      </button>
      {error && <span role="alert" class="error"> {error}</span>}
    </form>
  );
}
