import { useState } from 'preact/hooks';
import { api, ApiError } from '../api.js';

/** The admin token, sent once in a POST body; the server answers with an HttpOnly session cookie. */
export function SignIn(props: { onSignedIn: () => void }) {
  const [token, setToken] = useState('');
  const [problem, setProblem] = useState<string | undefined>();
  const submit = async (event: Event) => {
    event.preventDefault();
    try {
      await api.signIn(token);
      setToken('');
      props.onSignedIn();
    } catch (error) {
      setProblem(error instanceof ApiError && error.status === 401 ? 'That is not the admin token.' : (error as Error).message);
    }
  };
  return (
    <main class="sign-in">
      <form onSubmit={submit}>
        <h1>Petrel</h1>
        <label>
          Admin token
          <input name="token" type="password" autocomplete="current-password" value={token} onInput={(e) => setToken(e.currentTarget.value)} autofocus />
        </label>
        {problem && <p class="problem">{problem}</p>}
        <button type="submit">Sign in</button>
        <p class="hint">The token is <code>admin.token</code> in mta.config.yaml.</p>
      </form>
    </main>
  );
}
