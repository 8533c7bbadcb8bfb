import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { Link } from './components/link.js';
import { MessagePage } from './pages/message.js';
import { OverviewPage } from './pages/overview.js';
import { QueuePage } from './pages/queue.js';
import { SessionsPage } from './pages/sessions.js';
import { SignIn } from './pages/sign-in.js';
import { navigate, usePath } from './router.js';
import './style.css';

const PAGES = [
  { path: '/', title: 'Overview' },
  { path: '/queue', title: 'Queue' },
  { path: '/sessions', title: 'Live sessions' },
];

function App() {
  const [signedIn, setSignedIn] = useState<boolean | undefined>(undefined);
  const path = usePath();
  useEffect(() => {
    void api.signedIn().then(setSignedIn);
  }, []);
  if (signedIn === undefined) return null;
  if (!signedIn) return <SignIn onSignedIn={() => setSignedIn(true)} />;
  const message = /^\/messages\/([^/]+)$/.exec(path);
  return (
    <>
      <header class="bar">
        <span class="brand">Petrel</span>
        <nav>
          {PAGES.map((page) => (
            <Link href={page.path} class={page.path === path ? 'active' : ''}>
              {page.title}
            </Link>
          ))}
        </nav>
        <button
          class="quiet"
          onClick={() => {
            void api.signOut().then(() => {
              setSignedIn(false);
              navigate('/');
            });
          }}
        >
          Sign out
        </button>
      </header>
      <main>
        {message ? (
          <MessagePage id={decodeURIComponent(message[1])} />
        ) : path === '/queue' ? (
          <QueuePage />
        ) : path === '/sessions' ? (
          <SessionsPage />
        ) : (
          <OverviewPage />
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
